"""The restore job (rescue.restore.job, asked by rescue.restore.options) and what only it needs: the tape-order
plan (rescue.restore.plan), the catalog pass that follows it along the tape (rescue.restore.catalog_pass), the
journal that makes it resumable (rescue.restore.journal), the target checks (rescue.restore.target) and the steps
after the files (rescue.restore.finalize: boot steps, database reload)."""

"""The restore job (rescue.restore.job) and what only it needs: the tape-order plan (rescue.restore.plan), the
journal that makes it resumable (rescue.restore.journal), the target checks (rescue.restore.target) and the steps
after the files (rescue.restore.finalize: boot steps, database reload)."""

"""The backup job (rescue.backup.job) and what only it needs: the guards that refuse a dangerous backup
(rescue.backup.guards) and the local catalog directory kept per set (rescue.backup.catalogdir)."""

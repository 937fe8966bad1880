"""The on-tape format of a backup set, shared by backup and restore: three tape files, each ended by a filemark.

- tape file 0, the label (rescue.tapeset.label): `rescue-label.json`, `layout.json`, `RESTORE.txt`;
- tape file 1, the archive: POSIX pax tar in the set's record size (written and read by rescue.archive);
- tape file 2, the catalog (rescue.tapeset.catalog_tape): `catalog.jsonl.gz` (format: rescue.tapeset.catalog),
  `filelist.txt` (rescue.tapeset.filelist, `tar -tv` lines) and `summary.json`.

Tape files 0 and 2 are small tar archives in GNU tar's default 10 KiB records (rescue.tapeset.smalltar), so
plain `tar -xf /dev/nst0` reads them before anyone knows the set's record size.
"""

"""Jobs that read a whole archive once: `verify` (against the catalog, or a live tree like `tar --compare`) and
`catalog rebuild` (a catalog with positions and checksums for a tape plain GNU tar wrote)."""

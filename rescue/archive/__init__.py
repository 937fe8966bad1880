"""The archive layer: a directory tree to tape records and back, as POSIX pax tar that GNU tar reads.

- writer.py (`write_archive`) walks a tree (walk.py), encodes headers (headers.py, xattrs.py) and fills fixed-size
  records (record_writer.py), reporting each member's SHA-256 and position for the catalog.
- reader.py (`ArchiveReader`) streams members of any archive GNU tar writes out of records (record_reader.py,
  parse.py), resyncing past damage; extract.py (`Extractor`) writes them under a target root and nowhere else.
- member.py holds the Member record shared by all of them and by the catalog; tarformat.py the format constants.
Everything streams: memory stays flat whatever the number of members.
"""

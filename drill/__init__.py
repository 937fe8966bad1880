"""The recovery drill: a virtual SCSI tape (patched tgt), QEMU guests, backup, wipe, restore, compare."""

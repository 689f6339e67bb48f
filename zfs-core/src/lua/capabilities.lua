-- What this kernel module's channel programs can do (nosync). No arguments.
return {
    sync_clone = (zfs.sync.clone ~= nil),
    sync_rename_snapshot = (zfs.sync.rename_snapshot ~= nil),
}

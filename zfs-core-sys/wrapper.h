/* Everything xapi-zvol binds: libzfs_core, libnvpair and the shared ZFS constants. */
#include <libzfs_core.h>
#include <libnvpair.h>
#include <sys/fs/zfs.h>

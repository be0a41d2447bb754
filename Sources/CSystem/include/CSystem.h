#ifndef ETL_CSYSTEM_H
#define ETL_CSYSTEM_H

/// Renames `source` to `destination` only if `destination` does not exist (Linux renameat2 with RENAME_NOREPLACE),
/// atomically: of two processes renaming onto one name, exactly one succeeds. Returns 0, or -1 with errno set
/// (EEXIST when the name is taken; EINVAL or ENOSYS where the file system or kernel cannot do it).
int etl_rename_noreplace(const char *source, const char *destination);

#endif

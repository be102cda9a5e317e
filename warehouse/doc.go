// Package warehouse is where table files live: a directory on local disk or a
// bucket (and optional key prefix) in S3-compatible object storage.
//
// A Warehouse hands out one iceberg-go FileIO (see [Warehouse.IO]) that
// iceberg-go and Zombi share for metadata files, manifests and data files.
// The S3 backend is built on minio-go; importing this package registers it
// for the "s3" and "s3a" schemes in iceberg-go's io registry, so
// icebergio.LoadFS with the properties from [Warehouse.IOProps] resolves to
// the same client. Do not also import iceberg-go's io/gocloud packages: they
// register the same schemes and the second registration panics.
//
// Writes through the FileIO are atomic on both backends: a file becomes
// visible only when its writer is closed successfully, and a write that fails
// or is aborted leaves nothing behind. Every "not found" error satisfies
// errors.Is(err, fs.ErrNotExist).
package warehouse

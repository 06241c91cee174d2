// Package media is NeruTalk's media capability: blob storage, the image pipeline, avatars,
// uploaded files (attachments) and GIF/sticker search.
//
// # Storage
//
// BlobStore is the one seam to storage: Put (streaming), Get (with a byte range), Stat, Delete and
// Presign. DiskStore keeps blobs under DataDir/media (sharded folders, atomic writes through a
// temporary file, fsync and rename); S3Store keeps them in an S3 bucket (SigV4; large objects go
// up in a multipart upload with one 8 MiB part in memory, aborted on failure). Keys are generated
// here (namespace/random-hex[.variant]); no user input ever reaches a path or an object key.
//
// # Images
//
// Every image is checked and re-encoded before it is stored: the type comes from the bytes
// (JPEG, PNG, GIF, WebP), the dimensions from the header are checked against ImageMaxPixels before
// any pixel is decoded (for GIFs, the sum of every frame's area), the EXIF orientation of JPEGs is
// applied, and the pixels are encoded again, so EXIF (GPS included), XMP, comments and anything
// hidden in or appended to the file (polyglots) are gone. Thumbnails are scaled with Catmull-Rom.
//
// # Concurrency
//
// Every type here is safe for concurrent use. The image pipeline decodes at most GOMAXPROCS images
// at once (a semaphore; waiting honours the request's context), which bounds the memory that
// decoding takes whatever the number of concurrent uploads. Stores hold no locks across I/O.
package media

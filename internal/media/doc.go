// Package media is NeruTalk's media capability: blob storage, the image pipeline, avatars,
// uploaded files (attachments) and GIF/sticker search. Media (media.go) assembles it for the
// server; docs/media.md describes the behaviour for API users and operators.
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
// any pixel is decoded (for GIFs, the sum of every frame's area, read by a block walker), the EXIF
// orientation of JPEGs is applied (exif.go parses it), and the pixels are encoded again, so EXIF
// (GPS included), XMP, comments and anything hidden in or appended to the file (polyglots) are
// gone. Thumbnails are a box-filter shrink followed by Catmull-Rom.
//
// # Files
//
// Files (files.go) stores uploads: the type is detected from the first bytes and checked against
// per-kind allow-lists, the kind's size limit is enforced while the body streams to storage,
// images are re-encoded with a thumbnail, and identical contents are stored once (media_blobs,
// keyed by the SHA-256 of the upload) while every upload keeps its own row (files) with its owner.
// A content is referenced by its files rows; it is deleted with the last of them. An image is
// only reused without processing when the uploader has a file of it already: another user's
// copy is processed in full first, so that response times do not reveal who holds what. The chat
// package uses Get, AttachTx (in the transaction that stores a message) and Release, and answers
// Access for members of chats.
//
// # Concurrency
//
// Every exported type is safe for concurrent use. The image pipeline decodes under a memory
// budget (a weighted semaphore, ImageMemoryBytes, each image weighted by what its processing
// allocates, with a separate lane for small images; waiting honours the request's context), which
// bounds the memory that decoding takes whatever the number of concurrent uploads; avatars and
// files share it. 16-bit PNGs are decoded to 8 bits row by row (png16.go).
// Stores hold no locks across I/O. Concurrent uploads of the same bytes race on an
// INSERT ... ON CONFLICT DO NOTHING: one content row wins, the others delete their own objects;
// on PostgreSQL an upload that shares a content and the deletion of that content's last file can
// cross, and the loser's transaction fails on a foreign key and is retried. Files.StartCleanup
// runs the orphan sweep in one goroutine until its stop function is called (the server does so in
// Shutdown). Search keeps its cache in a map under a mutex that is never held across a call to
// the provider; the built-in stickers are drawn once, in parallel, on first use.
package media

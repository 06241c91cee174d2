package media

import (
	"mime"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kinds of upload. They match the message kinds that carry a file.
const (
	KindImage = "image"
	KindVideo = "video"
	KindAudio = "audio"
	KindFile  = "file"
)

// allowed maps every accepted type (detected from the content) to its kind. Anything else is
// refused with 415: executables, HTML, SVG, scripts, archives other than ZIP...
var allowed = map[string]string{
	mimeJPEG: KindImage, mimePNG: KindImage, mimeGIF: KindImage, mimeWebP: KindImage,

	"video/mp4": KindVideo, "video/webm": KindVideo, "video/quicktime": KindVideo,

	"audio/mpeg": KindAudio, // MP3
	"audio/aac":  KindAudio, // ADTS AAC
	"audio/mp4":  KindAudio, "audio/x-m4a": KindAudio,
	"audio/ogg": KindAudio, // Ogg Opus, Vorbis
	"audio/wav": KindAudio,

	"application/pdf": KindFile,
	"text/plain":      KindFile, "text/csv": KindFile, "text/rtf": KindFile,
	"application/msword":            KindFile,
	"application/vnd.ms-excel":      KindFile,
	"application/vnd.ms-powerpoint": KindFile,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   KindFile,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         KindFile,
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": KindFile,
	"application/vnd.oasis.opendocument.text":                                   KindFile,
	"application/vnd.oasis.opendocument.spreadsheet":                            KindFile,
	"application/vnd.oasis.opendocument.presentation":                           KindFile,
	"application/zip": KindFile,
}

// extensions gives the file name extension for a stored type, when a name lacks one or the
// content was converted (WebP stored as JPEG).
var extensions = map[string]string{
	mimeJPEG: ".jpg", mimePNG: ".png", mimeGIF: ".gif", mimeWebP: ".webp",
	"video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov",
	"audio/mpeg": ".mp3", "audio/aac": ".aac", "audio/mp4": ".m4a", "audio/x-m4a": ".m4a", "audio/ogg": ".ogg", "audio/wav": ".wav",
	"application/pdf": ".pdf", "text/plain": ".txt", "text/csv": ".csv", "text/rtf": ".rtf",
	"application/msword": ".doc", "application/vnd.ms-excel": ".xls", "application/vnd.ms-powerpoint": ".ppt",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   ".docx",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         ".xlsx",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
	"application/vnd.oasis.opendocument.text":                                   ".odt",
	"application/vnd.oasis.opendocument.spreadsheet":                            ".ods",
	"application/vnd.oasis.opendocument.presentation":                           ".odp",
	"application/zip": ".zip",
}

// maxNameBytes bounds stored file names.
const maxNameBytes = 200

// sanitizeName turns a client's file name into a safe display name: the last path element only,
// no control or format characters (no bidi overrides that disguise an extension), no quotes or
// separators, at most maxNameBytes, and an extension that matches the stored type.
func sanitizeName(name, storedMIME string) string {
	name = strings.ReplaceAll(name, `\`, "/")
	name = filepath.Base("/" + name)
	if name == "/" {
		name = ""
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == '"', r == '/', r == ':',
			r == '*', r == '?', r == '<', r == '>', r == '|':
			b.WriteRune('_')
		case unicode.IsSpace(r):
			b.WriteRune(' ')
		default:
			b.WriteRune(r)
		}
	}
	name = strings.Trim(b.String(), " .")
	ext := extensions[storedMIME]
	base := strings.TrimSuffix(name, filepath.Ext(name))
	if cur := strings.ToLower(filepath.Ext(name)); cur == ext || (ext == ".jpg" && cur == ".jpeg") {
		base, ext = name[:len(name)-len(cur)], name[len(name)-len(cur):]
	}
	if base == "" {
		base = "file"
	}
	for len(base)+len(ext) > maxNameBytes {
		_, size := utf8.DecodeLastRuneInString(base)
		base = base[:len(base)-size]
	}
	return base + ext
}

// contentDisposition is the Content-Disposition of a download: inline for what a browser only
// displays (re-encoded images, audio, video), attachment for everything else, with the name
// encoded per RFC 6266/5987 when it is not plain ASCII.
func contentDisposition(kind, name string) string {
	disp := "attachment"
	if kind == KindImage || kind == KindVideo || kind == KindAudio {
		disp = "inline"
	}
	if v := mime.FormatMediaType(disp, map[string]string{"filename": name}); v != "" {
		return v
	}
	return disp
}

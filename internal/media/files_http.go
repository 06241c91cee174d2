package media

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/httpapi"
	"github.com/nerutalk/nerutalk/internal/identity"
	"github.com/nerutalk/nerutalk/internal/store"
)

// The files routes:
//
//	chi   POST   /files                 upload (multipart field "file", streamed)   handleUpload
//	huma  GET    /files/{id}            download (bearer or ?token=)                download
//	huma  GET    /files/{id}/thumbnail  image thumbnail (bearer or ?token=)         download
//	huma  GET    /files/{id}/info       metadata                                    info
//	huma  DELETE /files/{id}            delete (owner)                              delete
//
// The upload is a plain chi handler because huma reads a multipart body into memory; it is
// documented in the OpenAPI document by hand (documentUpload).

// filesCache is the Cache-Control of downloads: a file's bytes never change, but access is
// personal.
const filesCache = "private, max-age=86400"

// multipartSlack is what a multipart body may carry beyond the file (headers, other fields).
const multipartSlack = 1 << 20

var (
	errNotMultipart = apperr.New(apperr.KindUnsupportedType, "unsupported_media_type",
		`send the file as multipart/form-data in the field "file"`)
	errBadMultipart = apperr.New(apperr.KindBadRequest, "bad_request", "the multipart body cannot be read")
)

// Register mounts the files routes; they authenticate with the API's Authenticator.
func (f *Files) Register(api *httpapi.API) {
	f.authenticate = api.Authenticate
	api.Router.Post(httpapi.BasePath+"/files", f.handleUpload)
	f.documentUpload(api)

	for _, v := range []struct {
		id, method, path, summary string
		thumb                     bool
	}{
		{"download-file", http.MethodGet, "/files/{id}", "Download a file", false},
		{"head-file", http.MethodHead, "/files/{id}", "A download's headers only", false},
		{"download-file-thumbnail", http.MethodGet, "/files/{id}/thumbnail", "Download an image's thumbnail (fits in 320 x 320; a still for animated GIFs)", true},
		{"head-file-thumbnail", http.MethodHead, "/files/{id}/thumbnail", "A thumbnail's headers only", true},
	} {
		huma.Register(api.Public, huma.Operation{
			OperationID: v.id, Method: v.method, Path: v.path, Tags: []string{"Media"}, Summary: v.summary,
			Description: "For the owner and for members of a chat where the file was sent; anyone else gets 404. " +
				"Authenticate with the Authorization header, or with `?token=` where a header cannot be sent (img and video tags). " +
				"Supports Range (206) and If-None-Match (304). Images, audio and video are served inline; " +
				"everything else as an attachment, always with nosniff and a sandboxing Content-Security-Policy.",
			Security:  []map[string][]string{{"bearer": {}}},
			Responses: binaryResponses("application/octet-stream"),
			Errors:    []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusPreconditionFailed, http.StatusRequestedRangeNotSatisfiable},
		}, func(ctx context.Context, in *downloadInput) (*blobOutput, error) {
			return f.download(ctx, in, v.thumb)
		})
	}
	huma.Register(api.Authed, huma.Operation{
		OperationID: "get-media-usage", Method: http.MethodGet, Path: "/media/usage", Tags: []string{"Media"},
		Summary: "The caller's storage use and quota",
		Description: "used_bytes is the sum of the sizes of the caller's files (an identical content uploaded twice, or " +
			"also held by someone else, counts for each file); an upload that would take it over quota_bytes is refused " +
			"with 403 quota_exceeded.",
	}, func(ctx context.Context, _ *struct{}) (*usageOutput, error) {
		u, err := f.Usage(ctx, identity.UserID(ctx))
		if err != nil {
			return nil, err
		}
		return &usageOutput{Body: u}, nil
	})
	huma.Register(api.Authed, huma.Operation{
		OperationID: "get-file-info", Method: http.MethodGet, Path: "/files/{id}/info", Tags: []string{"Media"},
		Summary: "A file's metadata", Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *fileIDInput) (*fileOutput, error) {
		row, err := f.readable(ctx, identity.UserID(ctx), in.ID)
		if err != nil {
			return nil, err
		}
		return &fileOutput{Body: f.file(row)}, nil
	})
	huma.Register(api.Authed, huma.Operation{
		OperationID: "delete-file", Method: http.MethodDelete, Path: "/files/{id}", Tags: []string{"Media"},
		Summary: "Delete an upload (owner only; not while a message carries it)", DefaultStatus: http.StatusNoContent,
		Errors: []int{http.StatusForbidden, http.StatusNotFound, http.StatusConflict},
	}, func(ctx context.Context, in *fileIDInput) (*struct{}, error) {
		return nil, f.Delete(ctx, identity.UserID(ctx), in.ID)
	})
}

type downloadInput struct {
	ID            string `path:"id" doc:"The file's id"`
	Token         string `query:"token" doc:"Access token, for tags that cannot send an Authorization header"`
	Authorization string `header:"Authorization" hidden:"true"`
}

type fileIDInput struct {
	ID string `path:"id" doc:"The file's id"`
}

type fileOutput struct {
	Body File
}

type usageOutput struct {
	Body Usage
}

func (f *Files) download(ctx context.Context, in *downloadInput, thumb bool) (*blobOutput, error) {
	p, err := f.authenticate.Caller(ctx, in.Authorization, in.Token)
	if err != nil {
		return nil, err
	}
	row, err := f.readable(ctx, p.UserID, in.ID)
	if err != nil {
		return nil, err
	}
	d := download{key: row.StorageKey, size: row.Size, modTime: store.Time(row.content.CreatedAt), contentType: row.MIME,
		etag: `"` + row.SHA256 + `"`, cacheControl: filesCache, disposition: contentDisposition(row.Kind, row.Name)}
	if thumb {
		if row.ThumbKey == "" {
			return nil, apperr.NotFound("thumbnail")
		}
		d.key, d.size, d.contentType, d.etag, d.disposition = row.ThumbKey, row.ThumbSize, row.ThumbMIME,
			`"`+row.SHA256+`-thumb"`, "inline"
	}
	return &blobOutput{Body: func(hctx huma.Context) {
		r, w := humachi.Unwrap(hctx)
		serveBlob(w, r, f.blobs, d)
	}}, nil
}

// handleUpload streams the multipart field "file" into Upload.
func (f *Files) handleUpload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := f.authenticate.Caller(ctx, r.Header.Get("Authorization"), "")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ctx = identity.With(ctx, p)
	// Admitted before the body is read, so a refused upload costs no transfer or processing.
	release, err := f.gate.begin(ctx, p.UserID)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	defer release()
	// The quota is checked on the declared length first (less what the multipart framing may
	// take), so a large upload over the quota is refused before its body is read.
	if err := f.checkQuota(ctx, p.UserID, max(r.ContentLength-multipartSlack, 0)); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, f.maxUpload()+multipartSlack)
	mr, err := r.MultipartReader()
	if err != nil {
		httpapi.WriteError(w, r, errNotMultipart)
		return
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			httpapi.WriteError(w, r, apperr.Invalid("body.file", `required: the file in the multipart field "file"`))
			return
		}
		if err != nil {
			httpapi.WriteError(w, r, clientError(err))
			return
		}
		if part.FormName() != "file" {
			if _, err := io.Copy(io.Discard, part); err != nil {
				httpapi.WriteError(w, r, clientError(err))
				return
			}
			continue
		}
		file, err := f.Upload(ctx, p.UserID, part.FileName(), clientReader{part})
		if err != nil {
			if ctx.Err() != nil {
				// The client went away: the answer reaches no one, but it says what happened
				// (a body cut short, 400) to the access log and the middleware, rather than 200.
				err = clientError(ctx.Err())
			}
			httpapi.WriteError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", file.URL)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(file)
		return
	}
}

// clientReader classifies the errors of reading a request body as the client's.
type clientReader struct{ r io.Reader }

func (c clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = clientError(err)
	}
	return n, err
}

// clientError turns a failure to read the request body into a 4xx.
func clientError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(mbe.Limit - multipartSlack)
	}
	e := *errBadMultipart
	e.Err = err
	return &e
}

// documentUpload adds POST /files to the OpenAPI document.
func (f *Files) documentUpload(api *httpapi.API) {
	oapi := api.Root.OpenAPI()
	reg := oapi.Components.Schemas
	fileSchema := reg.Schema(reflect.TypeOf(File{}), true, "File")
	problem := reg.Schema(reflect.TypeOf(httpapi.Problem{}), true, "Problem")
	problemResp := func(desc string) *huma.Response {
		return &huma.Response{Description: desc, Content: map[string]*huma.MediaType{"application/problem+json": {Schema: problem}}}
	}
	oapi.AddOperation(&huma.Operation{
		OperationID: "upload-file", Method: http.MethodPost, Path: httpapi.BasePath + "/files", Tags: []string{"Media"},
		Summary: "Upload a file (streamed; images re-encoded)",
		Description: "The type is detected from the content (the declared Content-Type and the file name are not trusted) and must be " +
			"an image (JPEG, PNG, GIF, WebP), a video (MP4, WebM, QuickTime), audio (MP3, AAC/M4A, Ogg, WAV) or a document " +
			"(PDF, plain text, CSV, RTF, Word/Excel/PowerPoint, OpenDocument, ZIP). Size limits per kind (default 20 MiB for " +
			"images, 100 MiB otherwise) are enforced while the body streams. Images are decoded and re-encoded upright " +
			"(EXIF orientation applied; all metadata, GPS included, removed) with a 320 px thumbnail. Identical contents are " +
			"stored once. A file never attached to a message is deleted after a day. A user's files add up to at most " +
			"NERUTALK_STORAGE_QUOTA_BYTES (GET /media/usage): an upload over it is 403 quota_exceeded, refused before the " +
			"body is read when Content-Length already tells.",
		Security: []map[string][]string{{"bearer": {}}},
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			"multipart/form-data": {Schema: &huma.Schema{
				Type: "object", Required: []string{"file"},
				Properties: map[string]*huma.Schema{"file": {Type: "string", Format: "binary", Description: "The file"}},
			}},
		}},
		Responses: map[string]*huma.Response{
			"201": {Description: "Stored", Content: map[string]*huma.MediaType{"application/json": {Schema: fileSchema}},
				Headers: map[string]*huma.Param{"Location": {Schema: &huma.Schema{Type: "string"}}}},
			"400": problemResp("The multipart body cannot be read"),
			"401": problemResp("Missing or invalid access token"),
			"403": problemResp("The caller's files would exceed the storage quota (quota_exceeded; see GET /media/usage)"),
			"413": problemResp("Too large for its kind (too_large)"),
			"415": problemResp("Not multipart, or a type that is not accepted (unsupported_media_type)"),
			"422": problemResp("No file, an empty file, a corrupt image (invalid_image) or one with too many pixels (image_too_large)"),
			"429": problemResp("Over the uploads per user per minute (rate_limited), or while the user has NERUTALK_UPLOADS_IN_FLIGHT other uploads in progress on the node (too_many_uploads); Retry-After says when to retry"),
			"500": problemResp("Internal error"),
			"503": problemResp("The session store or the blob store cannot answer"),
		},
	})
}

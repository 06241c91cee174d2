package httpapi

import (
	"reflect"

	"github.com/danielgtaylor/huma/v2"
)

// JSONResponse documents one more success answer of an operation, next to the one huma derives
// from the output type (DefaultStatus): e.g. the 200 of POST /chats that finds the existing direct
// chat, beside its 201. Put it in huma.Operation.Responses under its status.
func JSONResponse[T any](api huma.API, description string) *huma.Response {
	return &huma.Response{
		Description: description,
		Content: map[string]*huma.MediaType{
			"application/json": {Schema: api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[T](), true, "")},
		},
	}
}

// NullableObjects lets the named properties of an object schema be null besides the object they
// refer to ({"anyOf": [{"$ref": ...}, {"type": "null"}]}). huma's nullable tag refuses fields
// whose type is a struct, so a type with a pointer-to-struct field that is sent as null calls this
// from its TransformSchema (huma.SchemaTransformer).
func NullableObjects(s *huma.Schema, props ...string) *huma.Schema {
	for _, name := range props {
		p := s.Properties[name]
		if p == nil || p.Ref == "" {
			panic("httpapi.NullableObjects: " + name + " is not a property referring to an object schema")
		}
		s.Properties[name] = &huma.Schema{
			Description: p.Description,
			AnyOf:       []*huma.Schema{{Ref: p.Ref}, {Type: "null"}},
		}
	}
	return s
}

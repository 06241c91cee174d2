// Package asyncapi turns the WebSocket protocol description (realtime.Protocol: every command and
// event with the Go types that encode its data) into an AsyncAPI 3.0 document, served at
// /asyncapi.json, and into the human reference page /docs/websocket, rendered on the server from
// that document. The payload schemas come from huma's schema generator, the one behind
// /openapi.json, so a type has the same schema (json tags, enums, formats, descriptions) in both.
//
// Build runs once, while wiring; the Document is immutable afterwards and the handlers serve
// bytes rendered at Mount, so they are safe for concurrent use.
package asyncapi

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/nerutalk/nerutalk/internal/realtime"
)

// Version is the AsyncAPI version of the documents Build makes.
const Version = "3.0.0"

// ChannelName is the one channel: the WebSocket.
const ChannelName = "socket"

const (
	schemaPrefix  = "#/components/schemas/"
	messagePrefix = "#/channels/" + ChannelName + "/messages/"
	maxIDLen      = 128 // realtime's limit of the envelope id
)

// Document is an AsyncAPI 3.0 document (the subset NeruTalk uses).
type Document struct {
	AsyncAPI           string               `json:"asyncapi"`
	ID                 string               `json:"id"`
	Info               Info                 `json:"info"`
	DefaultContentType string               `json:"defaultContentType"`
	Servers            map[string]Server    `json:"servers"`
	Channels           map[string]Channel   `json:"channels"`
	Operations         map[string]Operation `json:"operations"`
	Components         Components           `json:"components"`
}

// Info is the document's info object.
type Info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

// Server is where the socket is.
type Server struct {
	Host        string                    `json:"host"`
	Protocol    string                    `json:"protocol"`
	Pathname    string                    `json:"pathname,omitempty"`
	Title       string                    `json:"title,omitempty"`
	Description string                    `json:"description,omitempty"`
	Variables   map[string]ServerVariable `json:"variables,omitempty"`
	Security    []Ref                     `json:"security,omitempty"`
}

// ServerVariable is a variable of a server's host.
type ServerVariable struct {
	Default     string `json:"default"`
	Description string `json:"description,omitempty"`
}

// Ref is a reference object.
type Ref struct {
	Ref string `json:"$ref"`
}

// Channel is the socket, with every message that travels on it.
type Channel struct {
	Address     string         `json:"address"`
	Title       string         `json:"title,omitempty"`
	Description string         `json:"description,omitempty"`
	Messages    map[string]Ref `json:"messages"`
	Bindings    map[string]any `json:"bindings,omitempty"`
	// CloseCodes are the close codes the server sends (an extension: AsyncAPI has no place
	// for them).
	CloseCodes []CloseCode `json:"x-close-codes"`
}

// CloseCode is one close code of x-close-codes.
type CloseCode struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Meaning string `json:"meaning"`
}

// ErrorCode is one code of x-error-codes.
type ErrorCode struct {
	Code    string `json:"code"`
	Meaning string `json:"meaning,omitempty"`
}

// Operation is a command the client sends (action send) or an event it receives (action receive).
type Operation struct {
	Action      string `json:"action"`
	Channel     Ref    `json:"channel"`
	Title       string `json:"title,omitempty"`
	Summary     string `json:"summary,omitempty"`
	Description string `json:"description,omitempty"`
	Messages    []Ref  `json:"messages"`
	Reply       *Reply `json:"reply,omitempty"`
	// Errors are the codes the command itself may answer in an error frame, besides the
	// transport's (an extension).
	Errors []string `json:"x-error-codes,omitempty"`
}

// Reply is the answer of a command: its ack or an error frame.
type Reply struct {
	Channel  Ref   `json:"channel"`
	Messages []Ref `json:"messages"`
}

// Components holds the messages, the payload schemas and the security schemes.
type Components struct {
	Messages        map[string]Message        `json:"messages"`
	Schemas         map[string]*huma.Schema   `json:"schemas"`
	SecuritySchemes map[string]SecurityScheme `json:"securitySchemes"`
}

// Message is one frame type: its envelope is the payload.
type Message struct {
	Name          string       `json:"name"`
	Title         string       `json:"title,omitempty"`
	Summary       string       `json:"summary,omitempty"`
	Description   string       `json:"description,omitempty"`
	ContentType   string       `json:"contentType"`
	Payload       *huma.Schema `json:"payload"`
	CorrelationID *Correlation `json:"correlationId,omitempty"`
	// Errors lists the transport's error codes, on the error message (an extension).
	Errors []ErrorCode `json:"x-error-codes,omitempty"`
}

// Correlation says where the id that pairs a command and its answer is.
type Correlation struct {
	Description string `json:"description,omitempty"`
	Location    string `json:"location"`
}

// SecurityScheme is how the upgrade authenticates.
type SecurityScheme struct {
	Type         string `json:"type"`
	Description  string `json:"description,omitempty"`
	Scheme       string `json:"scheme,omitempty"`
	BearerFormat string `json:"bearerFormat,omitempty"`
	Name         string `json:"name,omitempty"`
	In           string `json:"in,omitempty"`
}

// Options are what the document says besides the protocol.
type Options struct {
	Title, Version string
	Path           string // the socket's path (realtime.Path)
	// Host is the default of the servers' host variable (the configured listen address).
	Host string
}

// The message keys: a command and an event may share a frame type (typing_indicator), so the
// keys say which side sends it.
func commandKey(typ string) string { return "command." + typ }
func ackKey(typ string) string     { return "ack." + typ }
func eventKey(typ string) string   { return "event." + typ }

const errorKey = "error"

// SendOperation and ReceiveOperation are the operation ids of a command and of an event.
func SendOperation(typ string) string    { return "send." + typ }
func ReceiveOperation(typ string) string { return "receive." + typ }

// Build makes the AsyncAPI document of the protocol. It fails when two Go types of the payloads
// share a schema name.
func Build(o Options, p realtime.Protocol) (doc *Document, err error) {
	defer func() { // huma's registry panics on a name shared by two types
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("asyncapi: payload schemas: %v", r)
		}
	}()
	reg := huma.NewMapRegistry(schemaPrefix, huma.DefaultSchemaNamer)
	b := &builder{reg: reg, doc: &Document{
		AsyncAPI: Version,
		ID:       "urn:nerutalk:websocket",
		Info: Info{Title: o.Title, Version: o.Version, Description: "The one WebSocket of the NeruTalk API: " +
			"events from the server (messages, typing, presence, calls, locations) and commands from the client. " +
			"Every frame, in both directions, is one JSON envelope {\"type\", \"id\"?, \"data\"} in a text message. " +
			"A client frame with an id is answered exactly once, in frame order, by an ack (with the command's result) " +
			"or an error frame carrying the same id; a failed frame without id still gets an error frame, without id. " +
			"The narrative guide is docs/websocket.md; the REST API is /openapi.json."},
		DefaultContentType: "application/json",
		Channels:           map[string]Channel{},
		Operations:         map[string]Operation{},
		Components: Components{
			Messages: map[string]Message{},
			SecuritySchemes: map[string]SecurityScheme{
				"bearer": {Type: "httpBearerToken", Scheme: "bearer", BearerFormat: "JWT",
					Description: "The access token from /auth/login, /auth/register or /auth/refresh, in the Authorization header of the upgrade (apps)"},
				"token": {Type: "httpApiKey", Name: "token", In: "query",
					Description: "The same access token as ?token= (browsers, which cannot set headers on a WebSocket)"},
			},
		},
	}}
	b.doc.Servers = b.servers(o)
	ch := Channel{
		Address: o.Path, Title: "The WebSocket", Messages: map[string]Ref{},
		Description: "GET " + o.Path + " upgraded to a WebSocket (RFC 6455, text frames, no compression, no subprotocol). " +
			"The token is checked before the upgrade: a bad one is a 401 problem document.",
		Bindings: map[string]any{"ws": map[string]any{"method": "GET", "bindingVersion": "0.1.0"}},
	}
	for _, c := range realtime.CloseCodes() {
		ch.CloseCodes = append(ch.CloseCodes, CloseCode(c))
	}
	b.doc.Channels[ChannelName] = ch
	b.errorMessage()
	for _, c := range p.Commands {
		b.command(c)
	}
	for _, e := range p.Events {
		b.event(e)
	}
	b.doc.Operations[ReceiveOperation(errorKey)] = Operation{
		Action: "receive", Channel: Ref{"#/channels/" + ChannelName}, Title: "error",
		Summary:     "A client frame without id failed",
		Description: "Frames with an id get their error frame as the reply of their command.",
		Messages:    []Ref{{messagePrefix + errorKey}},
	}
	b.nullablePointers()
	b.doc.Components.Schemas = reg.Map()
	return b.doc, nil
}

type builder struct {
	reg huma.Registry
	doc *Document
}

func (b *builder) servers(o Options) map[string]Server {
	host := o.Host
	if host == "" {
		host = "localhost:8080"
	}
	security := []Ref{{"#/components/securitySchemes/bearer"}, {"#/components/securitySchemes/token"}}
	vars := map[string]ServerVariable{"host": {Default: host, Description: "The API's host and port"}}
	return map[string]Server{
		"production": {Host: "{host}", Protocol: "wss", Pathname: o.Path, Title: "Behind TLS", Variables: vars, Security: security},
		"local":      {Host: "{host}", Protocol: "ws", Pathname: o.Path, Title: "Plain (development)", Variables: vars, Security: security},
	}
}

// addMessage registers a message under key, on the channel and in the components.
func (b *builder) addMessage(key string, m Message) Ref {
	b.doc.Components.Messages[key] = m
	b.doc.Channels[ChannelName].Messages[key] = Ref{"#/components/messages/" + key}
	return Ref{messagePrefix + key}
}

// dataSchema is the schema of a frame's data: a reference to the Go type's schema, or an empty
// object for nil.
func (b *builder) dataSchema(v any, hint string, closed bool) *huma.Schema {
	if v == nil {
		s := &huma.Schema{Type: huma.TypeObject, Description: "An empty object"}
		if closed {
			s.AdditionalProperties = false
		}
		return s
	}
	return b.reg.Schema(reflect.TypeOf(v), true, hint)
}

var idSchema = func() *huma.Schema {
	n := maxIDLen
	return &huma.Schema{Type: huma.TypeString, MaxLength: &n}
}

// envelope is the schema of a frame of type typ: {"type": typ, "id"?, "data"}.
func envelope(typ string, id string, data *huma.Schema, required ...string) *huma.Schema {
	props := map[string]*huma.Schema{
		"type": {Type: huma.TypeString, Enum: []any{typ}},
		"data": data,
	}
	if id != "" {
		props["id"] = idSchema()
		props["id"].Description = id
	}
	return &huma.Schema{Type: huma.TypeObject, Properties: props, Required: required}
}

var correlation = &Correlation{Description: "The id of the client frame, carried back by its answer", Location: "$message.payload#/id"}

func (b *builder) errorMessage() {
	m := Message{
		Name: errorKey, Title: "error", ContentType: "application/json",
		Summary:     "A client frame failed",
		Description: "The answer to a frame that failed: with the frame's id when it had one. Commands add their own codes (the REST API's): see each operation's x-error-codes.",
		Payload: envelope(errorKey, "The failed frame's id, absent when it had none",
			b.dataSchema(realtime.ErrorData{}, "ErrorData", true), "type", "data"),
		CorrelationID: correlation,
	}
	for _, e := range realtime.TransportErrors {
		m.Errors = append(m.Errors, ErrorCode(e))
	}
	b.addMessage(errorKey, m)
}

func (b *builder) command(c realtime.CommandSpec) {
	data := b.dataSchema(c.Data, c.Type+"Data", false)
	cmd := b.addMessage(commandKey(c.Type), Message{
		Name: c.Type, Title: c.Type, Summary: c.Summary, Description: c.Description, ContentType: "application/json",
		// data may be omitted or null (it is then {}); the server checks the fields.
		Payload:       envelope(c.Type, "Chosen by the client: the answer carries it back. Without it there is no ack, but failures still get an error frame", data, "type"),
		CorrelationID: correlation,
	})
	ack := b.addMessage(ackKey(c.Type), Message{
		Name: "ack", Title: "ack of " + c.Type, Summary: "The result of " + c.Type, ContentType: "application/json",
		Payload:       envelope("ack", "The command's id", b.dataSchema(c.Ack, c.Type+"Ack", true), "type", "id", "data"),
		CorrelationID: correlation,
	})
	b.doc.Operations[SendOperation(c.Type)] = Operation{
		Action: "send", Channel: Ref{"#/channels/" + ChannelName}, Title: c.Type,
		Summary: c.Summary, Description: c.Description, Messages: []Ref{cmd},
		Reply:  &Reply{Channel: Ref{"#/channels/" + ChannelName}, Messages: []Ref{ack, {messagePrefix + errorKey}}},
		Errors: c.Errors,
	}
}

func (b *builder) event(e realtime.EventSpec) {
	ref := b.addMessage(eventKey(e.Type), Message{
		Name: e.Type, Title: e.Type, Summary: e.Summary, Description: e.Description, ContentType: "application/json",
		Payload: envelope(e.Type, "", b.dataSchema(e.Data, e.Type+"Data", true), "type", "data"),
	})
	b.doc.Operations[ReceiveOperation(e.Type)] = Operation{
		Action: "receive", Channel: Ref{"#/channels/" + ChannelName}, Title: e.Type,
		Summary: e.Summary, Description: e.Description, Messages: []Ref{ref},
	}
}

// timeLike matches time.Time (and *time.Time), which encodes as a string.
var timeLike = reflect.TypeFor[interface{ UnixNano() int64 }]()

// nullablePointers marks the struct-pointer fields that encode as null (no omitempty) as
// "the schema or null": huma's generator leaves them a plain reference (it supports null only
// for scalars), which the frames would not match.
func (b *builder) nullablePointers() {
	for name, s := range b.reg.Map() {
		t := b.reg.TypeFromRef(schemaPrefix + name)
		if t == nil || t.Kind() != reflect.Struct {
			continue
		}
		for _, f := range structFields(t) {
			ft := f.Type
			if ft.Kind() != reflect.Pointer || ft.Elem().Kind() != reflect.Struct || ft.Implements(timeLike) {
				continue
			}
			tag := f.Tag.Get("json")
			jname, opts, _ := strings.Cut(tag, ",")
			if jname == "" {
				jname = f.Name
			}
			if strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero") {
				continue
			}
			ps := s.Properties[jname]
			if ps == nil || ps.Ref == "" {
				continue
			}
			s.Properties[jname] = &huma.Schema{Description: ps.Description,
				AnyOf: []*huma.Schema{{Ref: ps.Ref}, {Type: "null"}}}
		}
	}
}

// structFields lists t's JSON fields, the fields of embedded structs without a json tag
// flattened, as encoding/json and huma see them.
func structFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Tag.Get("json") == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				out = append(out, structFields(et)...)
				continue
			}
		}
		if f.IsExported() {
			out = append(out, f)
		}
	}
	return out
}

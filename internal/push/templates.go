package push

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
)

// NotificationTemplate is the localized title and body of one notification type. Placeholders: {{sender}},
// {{chat}}, {{preview}}, {{count}}. Rendering substitutes them in one pass over the template:
// the values (user content) are never read as template syntax.
type NotificationTemplate struct {
	ID        string     `json:"id" doc:"<type>:<locale>, e.g. message:de" example:"message:de"`
	Type      string     `json:"type"`
	Locale    string     `json:"locale"`
	Title     string     `json:"title"`
	Body      string     `json:"body"`
	Builtin   bool       `json:"builtin" doc:"A default shipped with NeruTalk (an admin's template of the same type and locale replaces it)"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// TemplateID is the id of the template of typ for locale: "<type>:<locale>".
func TemplateID(typ, locale string) string { return typ + ":" + locale }

// parseTemplateID splits an id into its type and locale.
func parseTemplateID(id string) (typ, locale string, err error) {
	typ, locale, ok := strings.Cut(id, ":")
	if !ok {
		return "", "", apperr.Invalid("path.id", "a template id is <type>:<locale>, e.g. message:de")
	}
	return typ, locale, nil
}

// NewNotificationTemplate is the body of POST /notifications/templates.
type NewNotificationTemplate struct {
	Type   string `json:"type" maxLength:"32" doc:"Notification type (message, messages, mention, message_hidden, mention_hidden, call, call_cancel, geofence_enter, geofence_exit, location_share)"`
	Locale string `json:"locale" maxLength:"35" doc:"Language tag such as en or de-AT"`
	NotificationTemplateInput
}

// NotificationTemplateInput is the body of PUT /notifications/templates/{id}.
type NotificationTemplateInput struct {
	Title string `json:"title,omitempty" maxLength:"200"`
	Body  string `json:"body,omitempty" maxLength:"1000"`
}

// builtinTemplates are the English defaults, by type.
var builtinTemplates = map[string][2]string{
	TypeMessage:       {"{{chat}}", "{{sender}}: {{preview}}"},
	TypeMessages:      {"{{chat}}", "{{count}} new messages"},
	TypeMention:       {"{{chat}}", "{{sender}} mentioned you: {{preview}}"},
	TypeMessageHidden: {"{{chat}}", "New message from {{sender}}"},
	TypeMentionHidden: {"{{chat}}", "{{sender}} mentioned you"},
	TypeCall:          {"{{sender}}", "Incoming {{preview}} call"},
	TypeCallCancel:    {"{{sender}}", "Call ended"},
	TypeGeofenceEnter: {"{{chat}}", "{{sender}} arrived"},
	TypeGeofenceExit:  {"{{chat}}", "{{sender}} left"},
	TypeLocation:      {"{{sender}}", "{{sender}} is sharing their location with you"},
}

// templateTypes are the types that have templates (admin notifications carry their texts).
func templateType(t string) bool { _, ok := builtinTemplates[t]; return ok }

var placeholder = regexp.MustCompile(`\{\{\s*([a-zA-Z_]*)\s*\}\}`)

// anyBraces is whatever an admin may have meant as a placeholder, across lines too: the
// placeholder pattern allows whitespace (newlines included) inside the braces.
var anyBraces = regexp.MustCompile(`(?s)\{\{(.*?)(\}\}|$)`)

// checkTemplate refuses placeholders other than the four known ones.
func checkTemplate(field, s string) error {
	for _, m := range anyBraces.FindAllStringSubmatch(s, -1) {
		switch strings.TrimSpace(m[1]) {
		case "sender", "chat", "preview", "count":
		default:
			return apperr.Invalid(field, fmt.Sprintf("unknown placeholder %s (known: {{sender}}, {{chat}}, {{preview}}, {{count}})", m[0]))
		}
	}
	if controlChar(s, true) {
		return apperr.Invalid(field, "must be UTF-8 text without control characters (newlines and tabs are fine)")
	}
	return nil
}

// templateSet is every stored template, by type and locale, read once per batch.
type templateSet struct {
	byKey    map[[2]string][2]string
	fallback string
}

func (s *Service) loadTemplates(ctx context.Context) (*templateSet, error) {
	ts := &templateSet{byKey: map[[2]string][2]string{}, fallback: s.o.FallbackLocale}
	rows, err := s.db.R.QueryContext(ctx, `SELECT type, locale, title, body FROM push_templates`)
	if err != nil {
		return nil, fmt.Errorf("push: templates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, loc, title, body string
		if err := rows.Scan(&typ, &loc, &title, &body); err != nil {
			return nil, fmt.Errorf("push: templates: %w", err)
		}
		ts.byKey[[2]string{typ, strings.ToLower(loc)}] = [2]string{title, body}
	}
	return ts, rows.Err()
}

// lookup finds the template of typ for locale: the exact locale, its language, the fallback
// locale (and its language), then the built-in default.
func (ts *templateSet) lookup(typ, locale string) [2]string {
	for _, l := range []string{locale, lang(locale), ts.fallback, lang(ts.fallback)} {
		if l == "" {
			continue
		}
		if t, ok := ts.byKey[[2]string{typ, strings.ToLower(l)}]; ok {
			return t
		}
	}
	return builtinTemplates[typ]
}

func lang(locale string) string {
	l, _, _ := strings.Cut(locale, "-")
	return l
}

// render fills the template of typ for locale with p.
func (ts *templateSet) render(typ, locale string, p Payload) (title, body string) {
	t := ts.lookup(typ, locale)
	count := "1"
	if c := p.Data["count"]; c != "" {
		count = c
	}
	return renderTemplate(t[0], p, count), renderTemplate(t[1], p, count)
}

// renderTemplate substitutes the placeholders of tpl in a single pass: text that a value brings
// in (a message containing "{{sender}}") is copied as it is, never expanded.
func renderTemplate(tpl string, p Payload, count string) string {
	out := placeholder.ReplaceAllStringFunc(tpl, func(m string) string {
		switch strings.TrimSpace(m[2 : len(m)-2]) {
		case "sender":
			return clean(p.Sender)
		case "chat":
			return clean(p.Chat)
		case "preview":
			return clean(p.Preview)
		case "count":
			return count
		}
		return m
	})
	return strings.TrimSpace(out)
}

// clean turns control characters (newlines included) into spaces.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// preview shortens a message text for a notification: at most 120 characters.
func preview(text string) string {
	text = strings.TrimSpace(clean(text))
	if utf8.RuneCountInString(text) <= 120 {
		return text
	}
	r := []rune(text)
	return string(r[:119]) + "…"
}

// Templates lists the stored templates and the built-in defaults they do not replace.
func (s *Service) Templates(ctx context.Context) ([]NotificationTemplate, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT type, locale, title, body, updated_at FROM push_templates ORDER BY type, locale`)
	if err != nil {
		return nil, s.internal("templates", err)
	}
	defer rows.Close()
	out := []NotificationTemplate{}
	have := map[[2]string]bool{}
	for rows.Next() {
		var t NotificationTemplate
		var at int64
		if err := rows.Scan(&t.Type, &t.Locale, &t.Title, &t.Body, &at); err != nil {
			return nil, s.internal("templates", err)
		}
		u := store.Time(at)
		t.UpdatedAt = &u
		t.ID = TemplateID(t.Type, t.Locale)
		have[[2]string{t.Type, t.Locale}] = true
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.internal("templates", err)
	}
	for _, typ := range sortedTypes() {
		if !have[[2]string{typ, "en"}] {
			b := builtinTemplates[typ]
			out = append(out, NotificationTemplate{ID: TemplateID(typ, "en"), Type: typ, Locale: "en", Title: b[0], Body: b[1], Builtin: true})
		}
	}
	return out, nil
}

func sortedTypes() []string {
	return []string{TypeCall, TypeCallCancel, TypeGeofenceEnter, TypeGeofenceExit, TypeLocation, TypeMention, TypeMentionHidden,
		TypeMessage, TypeMessageHidden, TypeMessages}
}

func checkTypeLocale(typ, locale string) (string, error) {
	if !templateType(typ) {
		return "", apperr.Invalid("type", "unknown notification type (one of "+strings.Join(sortedTypes(), ", ")+")")
	}
	loc, ok := normalizeLocale(locale)
	if !ok || loc == "" {
		return "", apperr.Invalid("locale", "must be a language tag such as en or de-AT")
	}
	return loc, nil
}

// NotificationTemplate returns the template of typ for locale: stored, or the built-in default for "en".
func (s *Service) Template(ctx context.Context, typ, locale string) (NotificationTemplate, error) {
	loc, err := checkTypeLocale(typ, locale)
	if err != nil {
		return NotificationTemplate{}, err
	}
	t := NotificationTemplate{ID: TemplateID(typ, loc), Type: typ, Locale: loc}
	var at int64
	err = s.db.R.QueryRowContext(ctx, `SELECT title, body, updated_at FROM push_templates WHERE type = $1 AND locale = $2`, typ, loc).
		Scan(&t.Title, &t.Body, &at)
	if errors.Is(err, sql.ErrNoRows) {
		if loc == "en" {
			b := builtinTemplates[typ]
			t.Title, t.Body, t.Builtin = b[0], b[1], true
			return t, nil
		}
		return NotificationTemplate{}, apperr.NotFound("template")
	}
	if err != nil {
		return NotificationTemplate{}, s.internal("template", err)
	}
	u := store.Time(at)
	t.UpdatedAt = &u
	return t, nil
}

// CreateTemplate stores a new template; one that is stored already for its type and locale is a
// conflict (replace it with PutTemplate).
func (s *Service) CreateTemplate(ctx context.Context, in NewNotificationTemplate) (NotificationTemplate, error) {
	loc, err := checkTypeLocale(in.Type, in.Locale)
	if err != nil {
		return NotificationTemplate{}, err
	}
	var one int
	err = s.db.R.QueryRowContext(ctx, `SELECT 1 FROM push_templates WHERE type = $1 AND locale = $2`, in.Type, loc).Scan(&one)
	if err == nil {
		return NotificationTemplate{}, apperr.New(apperr.KindConflict, "template_exists",
			"a template for "+TemplateID(in.Type, loc)+" exists; PUT /notifications/templates/"+TemplateID(in.Type, loc)+" replaces it")
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return NotificationTemplate{}, s.internal("create template", err)
	}
	return s.PutTemplate(ctx, in.Type, loc, in.NotificationTemplateInput)
}

// PutTemplate creates or replaces the template of typ for locale.
func (s *Service) PutTemplate(ctx context.Context, typ, locale string, in NotificationTemplateInput) (NotificationTemplate, error) {
	loc, err := checkTypeLocale(typ, locale)
	if err != nil {
		return NotificationTemplate{}, err
	}
	if strings.TrimSpace(in.Title) == "" && strings.TrimSpace(in.Body) == "" {
		return NotificationTemplate{}, apperr.Invalid("body", "title and body cannot both be empty")
	}
	if err := checkTemplate("body.title", in.Title); err != nil {
		return NotificationTemplate{}, err
	}
	if err := checkTemplate("body.body", in.Body); err != nil {
		return NotificationTemplate{}, err
	}
	now := s.o.Now().UTC().Truncate(time.Millisecond)
	_, err = s.db.W.ExecContext(ctx, `INSERT INTO push_templates (type, locale, title, body, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (type, locale) DO UPDATE SET title = excluded.title, body = excluded.body, updated_at = excluded.updated_at`,
		typ, loc, in.Title, in.Body, store.Millis(now))
	if err != nil {
		return NotificationTemplate{}, s.internal("put template", err)
	}
	return NotificationTemplate{ID: TemplateID(typ, loc), Type: typ, Locale: loc, Title: in.Title, Body: in.Body, UpdatedAt: &now}, nil
}

// DeleteTemplate removes a stored template (the built-in default, if any, applies again).
func (s *Service) DeleteTemplate(ctx context.Context, typ, locale string) error {
	loc, err := checkTypeLocale(typ, locale)
	if err != nil {
		return err
	}
	res, err := s.db.W.ExecContext(ctx, `DELETE FROM push_templates WHERE type = $1 AND locale = $2`, typ, loc)
	if err != nil {
		return s.internal("delete template", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.NotFound("template")
	}
	return nil
}

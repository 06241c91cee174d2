package push

import (
	"context"
	"strings"
	"testing"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/store"
	"github.com/nerutalk/nerutalk/internal/store/storetest"
)

func TestRenderIsPlainSubstitution(t *testing.T) {
	t.Parallel()
	p := Payload{Sender: "{{chat}}", Chat: "{{preview}} {{ sender }}", Preview: "{{count}} {{.Secret}} {{printf \"%s\" 1}}\nline"}
	got := renderTemplate("{{sender}}|{{chat}}|{{preview}}|{{count}}|{{unknown}}", p, "2")
	want := `{{chat}}|{{preview}} {{ sender }}|{{count}} {{.Secret}} {{printf "%s" 1}} line|2|{{unknown}}`
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestTemplateLookup(t *testing.T) {
	t.Parallel()
	ts := &templateSet{fallback: "fr", byKey: map[[2]string][2]string{
		{TypeMessage, "de"}:    {"DE {{chat}}", "{{sender}}: {{preview}}"},
		{TypeMessage, "de-at"}: {"AT {{chat}}", "{{sender}}: {{preview}}"},
		{TypeMessage, "fr"}:    {"FR {{chat}}", "{{sender}} : {{preview}}"},
	}}
	p := Payload{Sender: "Ann", Chat: "Club", Preview: "hi"}
	for _, tc := range []struct{ locale, title string }{
		{"de-AT", "AT Club"}, {"de-CH", "DE Club"}, {"de", "DE Club"}, {"es", "FR Club"}, {"", "FR Club"},
	} {
		if title, _ := ts.render(TypeMessage, tc.locale, p); title != tc.title {
			t.Errorf("%q: title %q, want %q", tc.locale, title, tc.title)
		}
	}
	if _, body := ts.render(TypeMention, "de", p); body != "Ann mentioned you: hi" {
		t.Errorf("built-in fallback: %q", body)
	}
}

func TestTemplateCRUD(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		h := newHarness(t, db)
		ctx := context.Background()
		if _, err := h.svc.PutTemplate(ctx, TypeMessage, "de", NotificationTemplateInput{Title: "{{chat}}", Body: "{{secret}}"}); apperr.KindOf(err) != apperr.KindInvalid {
			t.Fatalf("unknown placeholder: %v", err)
		}
		if _, err := h.svc.PutTemplate(ctx, "nope", "de", NotificationTemplateInput{Title: "x"}); apperr.KindOf(err) != apperr.KindInvalid {
			t.Fatalf("unknown type: %v", err)
		}
		tp, err := h.svc.PutTemplate(ctx, TypeMessage, "de_AT", NotificationTemplateInput{Title: "{{chat}}", Body: "{{sender}} schreibt: {{preview}}"})
		if err != nil || tp.Locale != "de-AT" {
			t.Fatalf("put: %+v %v", tp, err)
		}
		got, err := h.svc.Template(ctx, TypeMessage, "de-AT")
		if err != nil || got.Body != "{{sender}} schreibt: {{preview}}" || got.Builtin {
			t.Fatalf("get: %+v %v", got, err)
		}
		if got, err := h.svc.Template(ctx, TypeMessage, "en"); err != nil || !got.Builtin {
			t.Fatalf("built-in: %+v %v", got, err)
		}
		list, err := h.svc.Templates(ctx)
		if err != nil || len(list) != len(builtinTemplates)+1 {
			t.Fatalf("list: %d %v", len(list), err)
		}
		// A German device gets it, with user content copied literally.
		u, a := h.user("Ute"), h.user("Anna")
		if _, _, err := h.svc.RegisterDevice(ctx, u, "s", DeviceInput{Platform: "android", Token: "ute", Locale: "de-AT"}); err != nil {
			t.Fatal(err)
		}
		c := h.chat("direct", "", u, a)
		m := []string{u, a}
		h.stored(c, "direct", "", m, sm(c, "direct", "", m, a, 1, "{{sender}} {{preview}}"))
		h.clock.Advance(3e9)
		h.drain()
		s := h.sender.all()
		if len(s) != 1 || s[0].Message.Title != "Anna" || s[0].Message.Body != "Anna schreibt: {{sender}} {{preview}}" {
			t.Fatalf("rendered: %+v", s)
		}
		if err := h.svc.DeleteTemplate(ctx, TypeMessage, "de-AT"); err != nil {
			t.Fatal(err)
		}
		if err := h.svc.DeleteTemplate(ctx, TypeMessage, "de-AT"); apperr.KindOf(err) != apperr.KindNotFound {
			t.Fatalf("delete twice: %v", err)
		}
	})
}

func TestMentions(t *testing.T) {
	t.Parallel()
	got := strings.Join(mentions("hi @Bob, @carol. mail a@b.com @x @dave_1 @bob"), ",")
	if got != "bob,carol,dave_1" {
		t.Errorf("mentions = %q", got)
	}
}

// FuzzRender: whatever users write, rendering copies it (control characters turned into
// spaces) and never expands placeholders inside it.
func FuzzRender(f *testing.F) {
	f.Add("{{sender}}", "hello {{chat}}")
	f.Add("{{ preview }}", "@bob \x00 {{count}}")
	f.Fuzz(func(t *testing.T, name, text string) {
		p := Payload{Sender: name, Preview: text}
		got := renderTemplate("<{{sender}}>", p, "1")
		want := strings.TrimSpace("<" + clean(name) + ">")
		if got != want {
			t.Fatalf("render(%q) = %q, want %q", name, got, want)
		}
		_ = mentions(text)
		_ = preview(text)
	})
}

// FuzzTemplate: whatever an administrator stores as a template (PUT /notifications/templates),
// checkTemplate never panics, and a template it accepts renders with every placeholder
// expanded: with values that bring no braces, no placeholder is left in the notification, and
// no control character comes in from the values. Template ids are parsed without panicking.
func FuzzTemplate(f *testing.F) {
	f.Add("{{sender}}: {{preview}}", "ana", "team", "hi\nthere")
	f.Add("{{ count }} new in {{chat}}", "", "", "")
	f.Add("{{{sender}}}", "a", "b", "c")
	f.Add("{{sender", "a", "b", "c")
	f.Add("}}{{preview}}{{", "a", "b", "\x00\x1b")
	f.Add("{{unknown}}", "a", "b", "c")
	f.Add("message:de", "", "", "")
	f.Fuzz(func(t *testing.T, tpl, sender, chat, text string) {
		_, _, _ = parseTemplateID(tpl)
		if err := checkTemplate("body.body", tpl); err != nil {
			return
		}
		got := renderTemplate(tpl, Payload{Sender: sender, Chat: chat, Preview: text}, "3")
		if got != renderTemplate(tpl, Payload{Sender: sender, Chat: chat, Preview: text}, "3") {
			t.Fatalf("render(%q) is not deterministic", tpl)
		}
		if !strings.ContainsAny(sender+chat+text, "{}") && placeholder.MatchString(got) {
			t.Fatalf("render(%q) left a placeholder: %q", tpl, got)
		}
		if !controlChar(tpl, true) {
			for _, r := range got {
				if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f {
					t.Fatalf("render(%q) with %q, %q, %q carries control character %U: %q", tpl, sender, chat, text, r, got)
				}
			}
		}
	})
}

package config_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nerutalk/nerutalk/internal/config"
)

func vapidPair(t *testing.T) (pub, priv string) {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString(k.Bytes())
}

func TestPushSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile, credsFile := filepath.Join(dir, "AuthKey.p8"), filepath.Join(dir, "fcm.json")
	for _, f := range []string{keyFile, credsFile} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pub, priv := vapidPair(t)
	env := map[string]string{
		"NERUTALK_PUSH_FCM_CREDENTIALS_FILE": credsFile,
		"NERUTALK_PUSH_FCM_ENDPOINT":         "http://127.0.0.1:9999/",
		"NERUTALK_PUSH_APNS_KEY_FILE":        keyFile,
		"NERUTALK_PUSH_APNS_KEY_ID":          "ABC123DEFG",
		"NERUTALK_PUSH_APNS_TEAM_ID":         "TEAM123456",
		"NERUTALK_PUSH_APNS_TOPIC":           "org.example.app",
		"NERUTALK_PUSH_APNS_ENDPOINT":        "sandbox",
		"NERUTALK_PUSH_VAPID_PUBLIC_KEY":     pub,
		"NERUTALK_PUSH_VAPID_PRIVATE_KEY":    priv,
		"NERUTALK_PUSH_VAPID_SUBJECT":        "mailto:ops@example.org",
	}
	c, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.PushFCMCredentialsFile, c.PushFCMEndpoint, c.PushAPNsKeyFile, c.PushAPNsKeyID, c.PushAPNsTeamID,
		c.PushAPNsTopic, c.PushAPNsEndpoint, c.PushVAPIDPublicKey, c.PushVAPIDPrivateKey, c.PushVAPIDSubject}
	want := []string{credsFile, "http://127.0.0.1:9999", keyFile, "ABC123DEFG", "TEAM123456", "org.example.app", "sandbox",
		pub, priv, "mailto:ops@example.org"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("push settings (-want +got):\n%s", diff)
	}

	d := config.Default()
	if d.PushFCMCredentialsFile != "" || d.PushAPNsKeyFile != "" || d.PushVAPIDPublicKey != "" ||
		d.PushAPNsEndpoint != "production" || d.PushFCMEndpoint != "https://fcm.googleapis.com" {
		t.Errorf("push defaults: %+v", d)
	}
}

func TestPushSettingErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "AuthKey.p8")
	if err := os.WriteFile(keyFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, priv := vapidPair(t)
	pub2, _ := vapidPair(t)
	tests := []struct {
		name string
		env  map[string]string
		want []string
		hide string
	}{
		{"missing FCM file", map[string]string{"NERUTALK_PUSH_FCM_CREDENTIALS_FILE": filepath.Join(dir, "nope.json")},
			[]string{"NERUTALK_PUSH_FCM_CREDENTIALS_FILE", "cannot read"}, ""},
		{"FCM file is a folder", map[string]string{"NERUTALK_PUSH_FCM_CREDENTIALS_FILE": dir},
			[]string{"NERUTALK_PUSH_FCM_CREDENTIALS_FILE", "not a regular file"}, ""},
		{"FCM endpoint", map[string]string{"NERUTALK_PUSH_FCM_ENDPOINT": "fcm.googleapis.com"},
			[]string{"NERUTALK_PUSH_FCM_ENDPOINT", "http(s)://"}, ""},
		{"APNs key without key id", map[string]string{"NERUTALK_PUSH_APNS_KEY_FILE": keyFile, "NERUTALK_PUSH_APNS_TEAM_ID": "TEAM123456"},
			[]string{"NERUTALK_PUSH_APNS_KEY_ID", "required when NERUTALK_PUSH_APNS_KEY_FILE"}, ""},
		{"APNs key without team id", map[string]string{"NERUTALK_PUSH_APNS_KEY_FILE": keyFile, "NERUTALK_PUSH_APNS_KEY_ID": "ABC123DEFG"},
			[]string{"NERUTALK_PUSH_APNS_TEAM_ID", "required"}, ""},
		{"APNs key id without key", map[string]string{"NERUTALK_PUSH_APNS_KEY_ID": "ABC123DEFG"},
			[]string{"NERUTALK_PUSH_APNS_KEY_ID", "NERUTALK_PUSH_APNS_KEY_FILE too"}, ""},
		{"APNs key id shape", map[string]string{"NERUTALK_PUSH_APNS_KEY_FILE": keyFile, "NERUTALK_PUSH_APNS_KEY_ID": "abc", "NERUTALK_PUSH_APNS_TEAM_ID": "TEAM123456"},
			[]string{"NERUTALK_PUSH_APNS_KEY_ID", "10 capital letters"}, ""},
		{"APNs endpoint", map[string]string{"NERUTALK_PUSH_APNS_ENDPOINT": "staging"},
			[]string{"NERUTALK_PUSH_APNS_ENDPOINT", "production, sandbox"}, ""},
		{"APNs topic", map[string]string{"NERUTALK_PUSH_APNS_TOPIC": "org/app"},
			[]string{"NERUTALK_PUSH_APNS_TOPIC", "bundle id"}, ""},
		{"VAPID public key shape", map[string]string{"NERUTALK_PUSH_VAPID_PUBLIC_KEY": "AAAA", "NERUTALK_PUSH_VAPID_PRIVATE_KEY": priv},
			[]string{"NERUTALK_PUSH_VAPID_PUBLIC_KEY", "65 bytes"}, ""},
		{"VAPID public key alone", map[string]string{"NERUTALK_PUSH_VAPID_PUBLIC_KEY": pub},
			[]string{"NERUTALK_PUSH_VAPID_PRIVATE_KEY", "required when NERUTALK_PUSH_VAPID_PUBLIC_KEY"}, ""},
		{"VAPID private key alone", map[string]string{"NERUTALK_PUSH_VAPID_PRIVATE_KEY": priv},
			[]string{"NERUTALK_PUSH_VAPID_PRIVATE_KEY", "NERUTALK_PUSH_VAPID_PUBLIC_KEY too"}, priv},
		{"VAPID keys of two pairs", map[string]string{"NERUTALK_PUSH_VAPID_PUBLIC_KEY": pub2, "NERUTALK_PUSH_VAPID_PRIVATE_KEY": priv},
			[]string{"NERUTALK_PUSH_VAPID_PRIVATE_KEY", "does not match"}, priv},
		{"VAPID private key shape", map[string]string{"NERUTALK_PUSH_VAPID_PUBLIC_KEY": pub, "NERUTALK_PUSH_VAPID_PRIVATE_KEY": "c2VjcmV0"},
			[]string{"NERUTALK_PUSH_VAPID_PRIVATE_KEY", "32 bytes"}, "c2VjcmV0"},
		{"VAPID subject", map[string]string{"NERUTALK_PUSH_VAPID_SUBJECT": "ops@example.org"},
			[]string{"NERUTALK_PUSH_VAPID_SUBJECT", "mailto:"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(nil, func(k string) string { return tt.env[k] }, io.Discard)
			if err == nil {
				t.Fatal("Load = nil error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.hide != "" && strings.Contains(err.Error(), tt.hide) {
				t.Errorf("error %q reveals the secret", err)
			}
		})
	}
}

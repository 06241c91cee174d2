// Package agora builds Agora AccessToken2 ("007") tokens for the RTC service, the form Agora's
// servers accept since 2022. The format (little-endian, length-prefixed) is:
//
//	"007" + base64(zlib(signature + content))
//	content   = app_id issue_ts expire salt service_count services...
//	signature = HMAC-SHA256(key, content), packed as a string
//	key       = HMAC-SHA256(salt, HMAC-SHA256(issue_ts, app_certificate))
//	rtc       = type(1) privileges(map u16 -> u32, ascending keys) channel_name uid
//
// where a string is a u16 length followed by its bytes, and expire values are seconds from the
// issue time. The builder is checked against Agora's published test vectors (agora_test.go).
package agora

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Version is the prefix of every AccessToken2.
const Version = "007"

// Service types and RTC privileges of AccessToken2.
const (
	ServiceRTC = 1

	PrivilegeJoinChannel        = 1
	PrivilegePublishAudioStream = 2
	PrivilegePublishVideoStream = 3
	PrivilegePublishDataStream  = 4
)

// ErrBadCredentials is returned for an app id or certificate that is not 32 hex digits.
var ErrBadCredentials = errors.New("agora: app id and app certificate must be 32 hex digits")

// Token is an AccessToken2 with one RTC service.
type Token struct {
	AppID      string
	IssueTs    uint32 // Unix seconds
	Expire     uint32 // seconds after IssueTs
	Salt       uint32 // random, 1..99999999
	Channel    string
	UID        string            // decimal uid, "" for uid 0
	Privileges map[uint16]uint32 // privilege -> seconds after IssueTs
	// HasRTC is false for a token without services (only used by tests of the format).
	HasRTC bool
}

// UIDString is the uid as AccessToken2 carries it: decimal, and "" for 0.
func UIDString(uid uint32) string {
	if uid == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(uid), 10)
}

func validKey(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Content packs the unsigned part of the token.
func (t *Token) content() []byte {
	var b bytes.Buffer
	putString(&b, t.AppID)
	putU32(&b, t.IssueTs)
	putU32(&b, t.Expire)
	putU32(&b, t.Salt)
	if !t.HasRTC {
		putU16(&b, 0)
		return b.Bytes()
	}
	putU16(&b, 1)
	putU16(&b, ServiceRTC)
	keys := make([]uint16, 0, len(t.Privileges))
	for k := range t.Privileges {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	putU16(&b, uint16(len(keys)))
	for _, k := range keys {
		putU16(&b, k)
		putU32(&b, t.Privileges[k])
	}
	putString(&b, t.Channel)
	putString(&b, t.UID)
	return b.Bytes()
}

// signingKey derives the HMAC key from the certificate, the issue time and the salt.
func (t *Token) signingKey(appCertificate string) []byte {
	var ts, salt [4]byte
	binary.LittleEndian.PutUint32(ts[:], t.IssueTs)
	binary.LittleEndian.PutUint32(salt[:], t.Salt)
	h := hmac.New(sha256.New, ts[:])
	h.Write([]byte(appCertificate))
	k := h.Sum(nil)
	h = hmac.New(sha256.New, salt[:])
	h.Write(k)
	return h.Sum(nil)
}

// Payload returns the uncompressed signature + content, the bytes that are zlib-compressed.
func (t *Token) Payload(appCertificate string) ([]byte, error) {
	if !validKey(t.AppID) || !validKey(appCertificate) {
		return nil, ErrBadCredentials
	}
	content := t.content()
	h := hmac.New(sha256.New, t.signingKey(appCertificate))
	h.Write(content)
	var b bytes.Buffer
	putString(&b, string(h.Sum(nil)))
	b.Write(content)
	return b.Bytes(), nil
}

// Build signs the token with the app certificate and encodes it.
func (t *Token) Build(appCertificate string) (string, error) {
	p, err := t.Payload(appCertificate)
	if err != nil {
		return "", err
	}
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	if _, err := w.Write(p); err != nil {
		return "", fmt.Errorf("agora: compress: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("agora: compress: %w", err)
	}
	return Version + base64.StdEncoding.EncodeToString(z.Bytes()), nil
}

// RTC returns the token of a participant of channel with numeric uid: join-channel privilege and,
// when publish is set, the publish privileges (audio, video, data), each for privilegeExpire
// seconds; the token itself lasts tokenExpire seconds from issueTs.
func RTC(appID, channel string, uid uint32, publish bool, issueTs, salt, tokenExpire, privilegeExpire uint32) *Token {
	p := map[uint16]uint32{PrivilegeJoinChannel: privilegeExpire}
	if publish {
		p[PrivilegePublishAudioStream] = privilegeExpire
		p[PrivilegePublishVideoStream] = privilegeExpire
		p[PrivilegePublishDataStream] = privilegeExpire
	}
	return &Token{AppID: appID, IssueTs: issueTs, Expire: tokenExpire, Salt: salt, Channel: channel,
		UID: UIDString(uid), Privileges: p, HasRTC: true}
}

// Decode reads a token's payload (signature and content) back, for tests and diagnostics. It
// does not check the signature: Verify does.
func Decode(token string) (signature []byte, t *Token, err error) {
	if len(token) < len(Version) || token[:len(Version)] != Version {
		return nil, nil, errors.New("agora: not an AccessToken2")
	}
	raw, err := base64.StdEncoding.DecodeString(token[len(Version):])
	if err != nil {
		return nil, nil, fmt.Errorf("agora: base64: %w", err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("agora: zlib: %w", err)
	}
	p, err := io.ReadAll(io.LimitReader(zr, 64<<10))
	if err != nil {
		return nil, nil, fmt.Errorf("agora: zlib: %w", err)
	}
	return DecodePayload(p)
}

// DecodePayload parses uncompressed signature + content.
func DecodePayload(p []byte) (signature []byte, t *Token, err error) {
	r := &reader{b: p}
	signature = []byte(r.str())
	t = &Token{AppID: r.str(), IssueTs: r.u32(), Expire: r.u32(), Salt: r.u32()}
	n := r.u16()
	for i := 0; i < int(n) && r.err == nil; i++ {
		typ := r.u16()
		privs := map[uint16]uint32{}
		for j, m := 0, int(r.u16()); j < m && r.err == nil; j++ {
			k := r.u16()
			privs[k] = r.u32()
		}
		if typ != ServiceRTC {
			return nil, nil, fmt.Errorf("agora: service type %d not supported", typ)
		}
		t.HasRTC, t.Privileges, t.Channel, t.UID = true, privs, r.str(), r.str()
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	if len(r.b) != 0 {
		return nil, nil, errors.New("agora: trailing bytes")
	}
	return signature, t, nil
}

// Verify reports whether token is t signed with appCertificate (the same content and signature).
func Verify(token, appCertificate string) (*Token, error) {
	sig, t, err := Decode(token)
	if err != nil {
		return nil, err
	}
	p, err := t.Payload(appCertificate)
	if err != nil {
		return nil, err
	}
	want, _, err := DecodePayload(p)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(sig, want) {
		return nil, errors.New("agora: bad signature")
	}
	return t, nil
}

func putU16(b *bytes.Buffer, v uint16) { b.Write(binary.LittleEndian.AppendUint16(nil, v)) }
func putU32(b *bytes.Buffer, v uint32) { b.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func putString(b *bytes.Buffer, s string) {
	putU16(b, uint16(len(s)))
	b.WriteString(s)
}

type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("agora: truncated token")

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (r *reader) str() string { return string(r.take(int(r.u16()))) }

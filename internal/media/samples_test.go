package media

import (
	"archive/zip"
	"bytes"
	"testing"
)

// Minimal files that the type detector recognises, one per accepted non-image type, plus some
// that must be refused.

func pad(b []byte, n int) []byte { return append(b, make([]byte, n)...) }

func zipOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"[Content_Types].xml", "mimetype", "word/document.xml", "readme.txt"} {
		content, ok := files[name]
		if !ok {
			continue
		}
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type sample struct {
	name string
	data []byte
	mime string // "" = must be refused
	kind string
}

func samples(t testing.TB) []sample {
	return []sample{
		{"mp4", pad([]byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), 100), "video/mp4", KindVideo},
		{"quicktime", pad([]byte("\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  "), 100), "video/quicktime", KindVideo},
		{"webm", pad([]byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02"), 100), "video/webm", KindVideo},
		{"mp3", pad([]byte("\xff\xfb\x90\x64"), 400), "audio/mpeg", KindAudio},
		{"m4a", pad([]byte("\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A mp42isom"), 100), "audio/x-m4a", KindAudio},
		{"wav", pad([]byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"), 100), "audio/wav", KindAudio},
		{"ogg opus", pad([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead\x01\x02"), 100), "audio/ogg", KindAudio},
		{"pdf", []byte("%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"), "application/pdf", KindFile},
		{"text", []byte("Meeting notes\n- one\n- two\n"), "text/plain", KindFile},
		{"zip", zipOf(t, map[string]string{"readme.txt": "hello"}), "application/zip", KindFile},
		{"docx", zipOf(t, map[string]string{"[Content_Types].xml": "<Types/>", "word/document.xml": "<w:document/>"}), "application/vnd.openxmlformats-officedocument.wordprocessingml.document", KindFile},
		{"html", []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"), "", ""},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), "", ""},
		{"exe", pad([]byte("MZ\x90\x00"), 200), "", ""},
		{"elf", pad([]byte("\x7fELF\x02\x01\x01"), 200), "", ""},
		{"shell script", []byte("#!/bin/sh\nrm -rf /\n"), "", ""},
		{"javascript", []byte("#!/usr/bin/env node\nconsole.log(1)\n"), "", ""},
		{"json", []byte(`{"a": 1}`), "", ""},
		{"gzip", pad([]byte("\x1f\x8b\x08\x00"), 100), "", ""},
		{"bmp", pad([]byte("BM"), 100), "", ""},
	}
}

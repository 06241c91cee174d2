// Package docs holds NeruTalk's documentation pages. The binary embeds the Markdown files so a
// running server serves them next to its API reference (/docs/<name>.md), the WebSocket guide
// (websocket.md) first: a reader of /docs needs no checkout of the repository.
package docs

import "embed"

// Markdown is every docs/*.md file, at the root of the FS.
//
//go:embed *.md
var Markdown embed.FS

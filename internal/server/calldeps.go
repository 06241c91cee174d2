package server

import (
	"context"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/call"
)

// callAccounts is auth's accounts as call.Accounts (LiveKit participant names).
type callAccounts struct{}

func (callAccounts) DisplayNames(ctx context.Context, q call.Querier, ids []string) (map[string]string, error) {
	return auth.DisplayNames(ctx, q, ids)
}

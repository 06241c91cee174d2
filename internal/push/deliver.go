package push

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nerutalk/nerutalk/internal/apperr"
	"github.com/nerutalk/nerutalk/internal/push/provider"
	"github.com/nerutalk/nerutalk/internal/store"
)

// Error codes of deliveries that were not sent.
const (
	errInvalidToken     = "invalid_token"     // the provider said the token is dead; the device was removed
	errPermanent        = "permanent"         // the provider refused the message
	errRetriesExhausted = "retries_exhausted" // dead after MaxAttempts
	errDeviceGone       = "device_removed"    // the device was removed before its turn
	errBadPayload       = "bad_payload"
)

func isAppNotFound(err error) bool { return apperr.KindOf(err) == apperr.KindNotFound }

// loadDevices reads devices by id.
func (s *Service) loadDevices(ctx context.Context, ids []string) (map[string]deviceRow, error) {
	out := make(map[string]deviceRow, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 500)
		ph, args := inList(1, ids[:n])
		rows, err := s.db.R.QueryContext(ctx, `SELECT `+deviceCols+` FROM push_devices WHERE id IN (`+ph+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("push: devices: %w", err)
		}
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("push: devices: %w", err)
			}
			out[d.ID] = d
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("push: devices: %w", err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// message builds what the provider gets for delivery r on device d.
func (s *Service) message(r claimed, d deviceRow, p Payload, tpl *templateSet) provider.Message {
	m := provider.Message{Data: map[string]string{}, Priority: provider.PriorityNormal, CollapseKey: r.CollapseKey, PushType: "alert"}
	for k, v := range p.Data {
		m.Data[k] = v
	}
	m.Data["type"] = r.Type
	m.Data["notification_id"] = r.ParentID
	if r.Type == TypeAdmin {
		m.Title, m.Body = p.Title, p.Body
	} else {
		m.Title, m.Body = tpl.render(r.Type, d.Locale, p)
	}
	if p.Priority == string(provider.PriorityHigh) {
		m.Priority = provider.PriorityHigh
	}
	if p.TTL > 0 {
		m.TTL = time.Duration(p.TTL) * time.Second
	}
	switch r.Type {
	case TypeCall:
		if d.Provider == "apns" && d.VoIPToken != "" {
			m.PushType = "voip"
		}
	case TypeCallCancel:
		if d.Provider == "apns" && d.VoIPToken != "" {
			m.PushType = "voip"
		} else {
			m.PushType = "background"
			m.Title, m.Body = "", ""
		}
	}
	return m
}

type result struct {
	row claimed
	err error
	pre string // set when the row was settled without sending (device gone, bad payload, too many attempts)
}

// deliver sends claimed deliveries, Concurrency at a time, and records the outcomes in one
// transaction.
func (s *Service) deliver(ctx context.Context, rows []claimed) error {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.DeviceID
	}
	devices, err := s.loadDevices(ctx, uniq(ids))
	if err != nil {
		return err
	}
	tpl, err := s.loadTemplates(ctx)
	if err != nil {
		return err
	}
	results := make([]result, len(rows))
	sem := make(chan struct{}, s.o.Concurrency)
	var wg sync.WaitGroup
	for i, r := range rows {
		results[i].row = r
		d, ok := devices[r.DeviceID]
		if !ok {
			results[i].pre = errDeviceGone
			continue
		}
		if r.Attempts > s.o.MaxAttempts { // taken again and again after lost leases
			results[i].pre = errRetriesExhausted
			continue
		}
		var p Payload
		if err := json.Unmarshal([]byte(r.Payload), &p); err != nil {
			results[i].pre = errBadPayload
			continue
		}
		m := s.message(r, d, p, tpl)
		t := provider.Target{Provider: d.Provider, Platform: d.Platform, Token: d.Token, VoIPToken: d.VoIPToken, AppID: d.AppID,
			P256dh: d.P256dh, Auth: d.Auth}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			sctx, cancel := context.WithTimeout(ctx, s.o.Lease/2)
			defer cancel()
			results[i].err = s.o.Sender.Send(sctx, t, m)
		}(i)
	}
	wg.Wait()
	now := s.o.Now()
	nowMs := store.Millis(now)
	fs := make([]finish, len(results))
	for i, res := range results {
		r := res.row
		f := finish{id: r.ID}
		var re *provider.RetryableError
		switch {
		case res.pre == errRetriesExhausted:
			f.status, f.errorCode = "dead", res.pre
		case res.pre != "":
			f.status, f.errorCode = "failed", res.pre
		case res.err == nil:
			f.status = "sent"
		case errors.Is(res.err, provider.ErrInvalidToken):
			f.status, f.errorCode, f.removeDevice = "failed", errInvalidToken, r.DeviceID
		case errors.As(res.err, &re) || ctx.Err() == nil && errors.Is(res.err, context.DeadlineExceeded):
			var after time.Duration
			if re != nil {
				after = re.RetryAfter
			}
			if r.Attempts >= s.o.MaxAttempts {
				f.status, f.errorCode = "dead", errRetriesExhausted
			} else {
				f.status, f.nextAttemptAt = "queued", store.Millis(now.Add(s.backoff(r.Attempts, after)))
			}
		default:
			if ctx.Err() != nil { // shutting down: leave the row to its lease
				continue
			}
			f.status, f.errorCode = "failed", errPermanent
			s.log.WarnContext(ctx, "push: delivery refused", "id", r.ID, "provider", r.Provider, "err", res.err)
		}
		fs[i] = f
	}
	// Recorded even when ctx is cancelled (shutdown): sent is sent.
	wctx := context.WithoutCancel(ctx)
	err = s.db.Tx(wctx, func(tx *sql.Tx) error {
		_, err := s.applyFinishes(wctx, tx, fs, nowMs)
		return err
	})
	return err
}

// Command nerutalk is the NeruTalk messaging server.
//
//	nerutalk [serve] [flags]   run the server (the default)
//	nerutalk migrate [flags]   apply database migrations and exit
//	nerutalk admin grant|revoke <username> [flags]
//	                           make a user an admin, or a plain user again
//	nerutalk version           print the version
//
// Every flag also reads a NERUTALK_* environment variable; `nerutalk serve -help` lists them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nerutalk/nerutalk/internal/auth"
	"github.com/nerutalk/nerutalk/internal/config"
	"github.com/nerutalk/nerutalk/internal/media"
	"github.com/nerutalk/nerutalk/internal/server"
)

func main() {
	if media.IsImageWorker() {
		// internal/media's init runs an image worker's job and exits before main; getting here
		// means it did not, and a worker must never start a server.
		fmt.Fprintln(os.Stderr, "nerutalk: started as an image worker, but no job ran")
		os.Exit(2)
	}
	err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, config.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is the one line that a failed start prints: causes from drivers sometimes span lines
// (pgx lists each connection attempt on a line of its own).
func errorLine(err error) string {
	var parts []string
	for line := range strings.Lines(err.Error()) {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return "nerutalk: " + strings.ReplaceAll(strings.Join(parts, "; "), ":; ", ": ")
}

// usage is the answer to "nerutalk help": the commands, and where the settings are listed.
const usage = config.Usage + `
Every flag also reads a NERUTALK_* environment variable; "nerutalk serve -help" lists them.
`

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "nerutalk", server.Version)
		return nil
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "admin":
		return runAdmin(args, getenv, stdout)
	case "serve", "migrate":
	default:
		return fmt.Errorf("unknown command %q (want serve, migrate, admin, version or help)", cmd)
	}
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cmd == "migrate" {
		db, err := server.OpenStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		log.Info("migrations applied", "database", string(db.Dialect))
		return nil
	}
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx, nil)
}

// runAdmin is `nerutalk admin grant|revoke <username> [flags]`: it opens and migrates the
// configured database, sets the user's role and prints one line. Running nodes see the change
// within auth.DefaultSessionCacheTTL.
func runAdmin(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		return errors.New("usage: nerutalk admin grant|revoke <username> [flags]")
	}
	cfg, err := config.Load(args[2:], getenv, stdout)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, err := server.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	line, err := auth.AdminCommand(ctx, db, args[0], args[1])
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, line)
	return nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Command ferretdb runs FerretDB's embeddable package with the SQLite handler.
//
// It exists so Sergeant's MongoDB connector can be tested against a real MongoDB
// wire-protocol server without Docker: scripts/tools/ferretdb.sh builds it into
// .tools/bin/ferretdb. Only loopback listen addresses are accepted, logs go to
// stderr, and SIGTERM or SIGINT stops the server cleanly.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "loopback TCP address to listen on (host:port)")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite directory URL, e.g. file:/tmp/ferretdb/")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if err := run(logger, *listenAddr, *sqliteURL); err != nil {
		logger.Error("ferretdb failed", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger, listenAddr, sqliteURL string) error {
	if err := checkLoopback(listenAddr); err != nil {
		return err
	}

	server, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listenAddr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger.Info("ferretdb starting", "listen", listenAddr, "sqlite", sqliteURL)
	err = server.Run(ctx)
	logger.Info("ferretdb stopped")
	return err
}

// checkLoopback refuses addresses reachable from other hosts: this binary is a test server.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid --listen-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen-addr %q: host must be a loopback address", addr)
	}
	return nil
}

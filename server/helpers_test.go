package server

import (
	"io"
	"log/slog"
)

const (
	commitA = "0123456789abcdef0123456789abcdef01234567"
	commitB = "89abcdef0123456789abcdef0123456789abcdef"
	commitC = "fedcba9876543210fedcba9876543210fedcba98"
	commitD = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

// testToken is a token no output may show.
const testToken = "ghp_s3cr3tT0k3nTh4tMustN0tL34k"

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

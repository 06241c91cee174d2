package config

import "testing"

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ env, value, want string }{
		{"NERUTALK_JWT_SECRET", "short", "(hidden)"},
		{"NERUTALK_S3_SECRET_KEY", "s3cr3t", "(hidden)"},
		{"NERUTALK_GIPHY_API_KEY", "k", "(hidden)"},
		{"NERUTALK_DATABASE_URL", "postgres://nt:hunter2@db:5432/nt", "postgres://nt:xxxxx@db:5432/nt"},
		{"NERUTALK_REDIS_URL", "redis://:pw@cache:6379/0", "redis://:xxxxx@cache:6379/0"},
		{"NERUTALK_DATABASE_URL", "postgres://nt@db/nt", "postgres://nt@db/nt"},
		{"NERUTALK_ADDR", "localhost", "localhost"},
	}
	for _, tt := range tests {
		if got := redact(Setting{Env: tt.env}, tt.value); got != tt.want {
			t.Errorf("redact(%s, %q) = %q, want %q", tt.env, tt.value, got, tt.want)
		}
	}
}

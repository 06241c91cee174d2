package media

import (
	"testing"

	"github.com/nerutalk/nerutalk/internal/config"
)

// S3TestSettings is for the external tests: it returns a configuration mutator that puts media on
// the S3 test server (creating the bucket), skipping or failing like the internal S3 tests.
func S3TestSettings(t testing.TB) func(*config.Config) {
	cfg := testS3Config(t)
	testS3Store(t)
	return func(c *config.Config) {
		c.S3Endpoint, c.S3Region, c.S3Bucket = cfg.Endpoint, cfg.Region, cfg.Bucket
		c.S3AccessKey, c.S3SecretKey, c.S3PathStyle = cfg.AccessKey, cfg.SecretKey, true
	}
}

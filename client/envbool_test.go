package client_test

import (
	"strings"
	"testing"

	"github.com/walgate/walgate/client"
)

// Boolean variables take the usual spellings, and refuse anything else
// with a message naming the variable instead of reading it as false.
func TestBooleanEnvironment(t *testing.T) {
	load := func(v string) error {
		env := map[string]string{"WALGATE_URL": "http://10.0.0.1:7480", "WALGATE_TOKEN": "wgt1.main." + strings.Repeat("A", 43),
			"WALGATE_ALLOW_INSECURE_HTTP": v}
		_, err := client.LoadConfig(func(k string) string { return env[k] })
		return err
	}
	for _, v := range []string{"true", "TRUE", "1", "yes", "Yes", "on", "ON"} {
		if err := load(v); err != nil {
			t.Errorf("WALGATE_ALLOW_INSECURE_HTTP=%s: %v, want it read as true", v, err)
		}
	}
	for _, v := range []string{"false", "0", "no", "off", "Off", ""} {
		if err := load(v); err == nil || !strings.Contains(err.Error(), "refusing plain http://") {
			t.Errorf("WALGATE_ALLOW_INSECURE_HTTP=%q: %v, want it read as false (plain http refused)", v, err)
		}
	}
	for _, v := range []string{"maybe", "2", "yes please", "enabled"} {
		err := load(v)
		if !client.IsConfigError(err) || !strings.Contains(err.Error(), "WALGATE_ALLOW_INSECURE_HTTP") || !strings.Contains(err.Error(), "not a boolean") {
			t.Errorf("WALGATE_ALLOW_INSECURE_HTTP=%q: %v, want a configuration error naming the variable", v, err)
		}
	}
}

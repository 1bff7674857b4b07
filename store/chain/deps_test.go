package chain_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDecodersArePure keeps the row model and the decoders free of I/O: none of them may depend, even
// indirectly, on the database driver, Kafka, metrics or the network. A change that makes one of them import
// store (and so pgx) or internal/metrics fails here, not in review.
func TestDecodersArePure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	pure := []string{"../../store/chain", "../../internal/format", "../../internal/decode", "../../abi"}
	forbidden := []string{
		"github.com/jackc/pgx/v5",
		"github.com/confluentinc/confluent-kafka-go/v2/kafka",
		"github.com/prometheus/client_golang/prometheus",
		"github.com/chainsink/chainsink/store",
		"net/http",
	}
	for _, p := range pure {
		out, err := exec.Command("go", "list", "-deps", p).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", p, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f {
					t.Errorf("%s depends on %s", strings.TrimPrefix(p, "../../"), f)
				}
			}
		}
	}
}

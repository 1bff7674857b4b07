// Command chainsink indexes EVM chain data from Kafka into PostgreSQL. See README.md.
package main

import (
	"os"

	"github.com/chainsink/chainsink/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}

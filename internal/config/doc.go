// Package config reads chainsink's configuration file (--config, CHAINSINK_CONFIG): the contract sets whose
// events and functions get typed tables (docs/typed-tables.md).
//
// The file is YAML; JSON, being YAML's subset, works too. It is read into yaml.v3's node tree and walked by
// hand rather than unmarshalled into structs, because every mistake must be reported with the file and line
// it is on: an unknown key, a value of the wrong type, a name or address that cannot be, a name used twice.
// This package checks what the file alone can tell; whether an ABI, event or function exists is checked by
// internal/typed against the ABIs, with the positions kept here.
package config

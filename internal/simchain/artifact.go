package simchain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	gethabi "github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

// Artifact is a compiled contract to deploy: its ABI and creation bytecode.
type Artifact struct {
	ABI  gethabi.ABI
	Code []byte
}

// LoadArtifact reads a build artifact (testdata/contracts: Truffle's, Waffle's and Hardhat's all have
// top-level "abi" and "bytecode", with or without 0x).
func LoadArtifact(path string) (Artifact, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Artifact{}, fmt.Errorf("read contract artifact: %w", err)
	}
	var art struct {
		ABI      json.RawMessage `json:"abi"`
		Bytecode string          `json:"bytecode"`
	}
	if err := json.Unmarshal(raw, &art); err != nil {
		return Artifact{}, fmt.Errorf("parse contract artifact %s: %w", filepath.Base(path), err)
	}
	a, err := gethabi.JSON(bytes.NewReader(art.ABI))
	if err != nil {
		return Artifact{}, fmt.Errorf("parse the ABI of %s: %w", filepath.Base(path), err)
	}
	if len(art.Bytecode) < 2 {
		return Artifact{}, fmt.Errorf("%s has no bytecode", filepath.Base(path))
	}
	return Artifact{ABI: a, Code: common.FromHex(art.Bytecode)}, nil
}

// LoadABI reads an ABI JSON file (chainsink's built-in ABIs in abi/abis, for contracts that a factory
// deploys and that therefore have no artifact of their own).
func LoadABI(path string) (gethabi.ABI, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return gethabi.ABI{}, fmt.Errorf("read ABI: %w", err)
	}
	a, err := gethabi.JSON(bytes.NewReader(raw))
	if err != nil {
		return gethabi.ABI{}, fmt.Errorf("parse ABI %s: %w", filepath.Base(path), err)
	}
	return a, nil
}

package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeValue is a flag of a size in bytes, written with a binary unit or none: 256MiB, 1GiB, 512KiB,
// 268435456. "off" is -1, for the limits that can be turned off.
type sizeValue int64

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"K", 10}, {"M", 20}, {"G", 30}, {"B", 0}}

func (s *sizeValue) Set(v string) error {
	v = strings.TrimSpace(v)
	if v == "off" {
		*s = -1
		return nil
	}
	shift := uint(0)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, shift = strings.TrimSpace(n), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return fmt.Errorf("%q is not a size: want bytes with a unit, e.g. 256MiB, 1GiB, or off", v)
	}
	*s = sizeValue(n << shift)
	return nil
}

func (s *sizeValue) String() string {
	switch n := int64(*s); {
	case n < 0:
		return "off"
	case n > 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n > 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	default:
		return strconv.FormatInt(n, 10)
	}
}

func (s *sizeValue) Type() string { return "size" }

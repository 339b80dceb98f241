// Package money holds keycap's unit of account: whole micro-dollars in an
// int64, so that sums are exact and rounding happens once, upwards, where a
// price is turned into a charge.
package money

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// USD is an amount of US dollars in micro-dollars (1e-6 USD).
type USD int64

// Dollar is one US dollar.
const Dollar USD = 1_000_000

// Cent is one US cent.
const Cent USD = 10_000

// FromFloat converts dollars to USD, rounding up to the next micro-dollar so
// that a charge is never under-counted. Negative and NaN inputs give zero.
func FromFloat(dollars float64) USD {
	if math.IsNaN(dollars) || dollars <= 0 {
		return 0
	}
	v := dollars * 1e6
	// Absorb float noise such as 0.04*1e6 = 40000.000000000004.
	r := math.Round(v)
	if math.Abs(v-r) < 1e-6 {
		return USD(r)
	}
	if v >= math.MaxInt64 {
		return USD(math.MaxInt64)
	}
	return USD(math.Ceil(v))
}

// Dollars returns the amount as a float64 number of dollars.
func (u USD) Dollars() float64 { return float64(u) / 1e6 }

// String formats the amount for people: two decimals, or four when the amount
// is non-zero but under a cent, so small charges do not read as $0.00.
func (u USD) String() string {
	neg := ""
	if u < 0 {
		neg, u = "-", -u
	}
	if u != 0 && u < 100 {
		return fmt.Sprintf("%s$%.6f", neg, u.Dollars())
	}
	if u != 0 && u < Cent {
		return fmt.Sprintf("%s$%.4f", neg, u.Dollars())
	}
	// Round half up to the cent for display only.
	cents := (int64(u) + 5_000) / 10_000
	return fmt.Sprintf("%s$%d.%02d", neg, cents/100, cents%100)
}

// Exact formats the amount with all six decimals, for JSON and logs.
func (u USD) Exact() string {
	return strconv.FormatFloat(u.Dollars(), 'f', 6, 64)
}

// Parse reads a dollar amount such as "5", "5.25" or "$0.50".
func Parse(s string) (USD, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(t, "$")
	if t == "" {
		return 0, fmt.Errorf("%q is not an amount in dollars", s)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not an amount in dollars", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if f > 1e9 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return USD(math.Round(f * 1e6)), nil
}

// MarshalJSON writes the amount as a number of dollars, exact to the
// micro-dollar (0.06144).
func (u USD) MarshalJSON() ([]byte, error) {
	neg := u < 0
	if neg {
		u = -u
	}
	s := strconv.FormatInt(int64(u)/1e6, 10)
	if frac := int64(u) % 1e6; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	}
	if neg {
		s = "-" + s
	}
	return []byte(s), nil
}

// UnmarshalJSON reads a number of dollars.
func (u *USD) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(strings.Trim(string(b), `"`), 64)
	if err != nil {
		return fmt.Errorf("%s is not an amount in dollars", b)
	}
	*u = USD(math.Round(f * 1e6))
	return nil
}

package server

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// flagTable defines Config's flags on a flag.FlagSet. Every flag's help names its
// BROWSERD_* variable (EnvName); Load reads those for the flags not given.
type flagTable struct{ fs *flag.FlagSet }

func (t flagTable) add(v flag.Value, name, help string) {
	t.fs.Var(v, name, fmt.Sprintf("%s (env %s)", help, EnvName(name)))
}

func (t flagTable) str(p *string, name, help string) { t.add((*stringValue)(p), name, help) }
func (t flagTable) num(p *int, name, help string)    { t.add((*intValue)(p), name, help) }
func (t flagTable) size(p *int64, name, help string) { t.add((*sizeValue)(p), name, help) }
func (t flagTable) dur(p *time.Duration, name, help string) {
	t.add((*durationValue)(p), name, help)
}

// secret is a string flag whose value -help never shows (an API key, a password).
func (t flagTable) secret(p *string, name, help string) { t.add((*secretValue)(p), name, help) }

// boolean is a flag that may stand alone (--x means --x=true) when alone is set; else
// it needs a value (--x=false).
func (t flagTable) boolean(p *bool, name, help string, alone bool) {
	t.add(&boolValue{p: p, alone: alone}, name, help)
}

type stringValue string

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string     { return string(*s) }

type secretValue string

func (s *secretValue) Set(v string) error { *s = secretValue(v); return nil }
func (s *secretValue) String() string     { return "" } // never print a secret in -help

type intValue int

func (n *intValue) Set(v string) error {
	i, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("not a whole number: %q", v)
	}
	*n = intValue(i)
	return nil
}
func (n *intValue) String() string { return strconv.Itoa(int(*n)) }

type durationValue time.Duration

func (d *durationValue) Set(v string) error {
	p, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("not a duration (e.g. 30s, 5m, 720h): %q", v)
	}
	*d = durationValue(p)
	return nil
}
func (d *durationValue) String() string { return time.Duration(*d).String() }

// sizeValue is a size in bytes: a whole number, optionally with a binary unit (disk.go).
// A negative size is kept as it is (it disables the limit).
type sizeValue int64

func (s *sizeValue) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeValue(n)
	return nil
}
func (s *sizeValue) String() string { return formatSize(int64(*s)) }

type boolValue struct {
	p     *bool
	alone bool
}

func (b *boolValue) Set(v string) error {
	x, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("not true or false: %q", v)
	}
	*b.p = x
	return nil
}

func (b *boolValue) String() string {
	if b == nil || b.p == nil { // flag.PrintDefaults asks a zero value
		return "false"
	}
	return strconv.FormatBool(*b.p)
}

// IsBoolFlag lets the flag stand alone when alone is set (flag.boolFlag).
func (b *boolValue) IsBoolFlag() bool { return b.alone }

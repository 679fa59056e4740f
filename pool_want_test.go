package browserd

import (
	"testing"
	"time"
)

// TestPoolWant checks how many browsers a shelf plans for at a create rate.
func TestPoolWant(t *testing.T) {
	now := time.Now()
	takes := func(n int, every time.Duration) []time.Time {
		ts := make([]time.Time, n)
		for i := range ts {
			ts[i] = now.Add(-time.Duration(n-1-i) * every)
		}
		return ts
	}
	p := &pool{cfg: PoolConfig{Size: 2, Keyed: 3}, launchDur: 800 * time.Millisecond}
	for _, c := range []struct {
		name string
		sh   shelf
		want int
	}{
		{"default, no creates", shelf{plain: true}, 2},
		{"default, one create", shelf{plain: true, takes: takes(1, 0)}, 2},
		{"default, two creates close together", shelf{plain: true, takes: takes(2, 50*time.Millisecond)}, 2},
		// 4/s × 0.8 s × 1.5 = 4.8
		{"default, back-to-back every 250 ms", shelf{plain: true, takes: takes(20, 250*time.Millisecond)}, 5},
		{"default, flood", shelf{plain: true, takes: takes(40, 10*time.Millisecond)}, 8}, // 4×Size
		{"default, drained", shelf{plain: true, drained: true}, 0},
		{"keyed, one create", shelf{takes: takes(1, 0)}, 1},
		{"keyed, every 250 ms", shelf{takes: takes(20, 250*time.Millisecond)}, 3}, // Keyed
		{"default, creates older than the window", shelf{plain: true, takes: []time.Time{now.Add(-time.Minute), now.Add(-50 * time.Second)}}, 2},
	} {
		if got := p.want(&c.sh, now); got != c.want {
			t.Errorf("%s: want() = %d; want %d", c.name, got, c.want)
		}
	}
	p.cfg.KeyedIdle = time.Minute
	if got := p.want(&shelf{lastUse: now.Add(-2 * time.Minute)}, now); got != 0 {
		t.Errorf("keyed shelf idle past KeyedIdle: want() = %d; want 0", got)
	}
}

// TestLaunchKey checks what makes launches interchangeable.
func TestLaunchKey(t *testing.T) {
	base := LaunchOptions{Viewport: Viewport{Width: 1280, Height: 720}, Args: []string{"--a"}}
	k, ok := launchKey(base)
	if !ok {
		t.Fatal("plain options have no key")
	}
	same := base
	same.SessionID, same.Background = "s1", true
	if k2, _ := launchKey(same); k2 != k {
		t.Error("session id or Background changed the key")
	}
	split, _ := launchKey(LaunchOptions{Args: []string{"--a", "--b"}})
	joined, _ := launchKey(LaunchOptions{Args: []string{"--a a2:--b"}})
	if split == joined {
		t.Error("two argument lists share a key")
	}
	for name, o := range map[string]LaunchOptions{
		"viewport": {Viewport: Viewport{Width: 800, Height: 720}, Args: []string{"--a"}},
		"args":     {Viewport: base.Viewport, Args: []string{"--a", "--b"}},
		"files":    {Viewport: base.Viewport, Args: []string{"--a"}, Files: []LaunchFiles{{Key: "context c"}}},
	} {
		if k2, _ := launchKey(o); k2 == k {
			t.Errorf("%s: same key as the base", name)
		}
	}
	if _, ok := launchKey(LaunchOptions{Profile: "/p"}); ok {
		t.Error("a launch with a profile path has a key")
	}
	v1 := LaunchOptions{Files: []LaunchFiles{{Key: "context c", Version: "1"}}}
	v2 := LaunchOptions{Files: []LaunchFiles{{Key: "context c", Version: "2"}}}
	k1, _ := launchKey(v1)
	k2, _ := launchKey(v2)
	if k1 != k2 || filesVersion(v1) == filesVersion(v2) {
		t.Error("file versions must share the key and differ in version")
	}
}

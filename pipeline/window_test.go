package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/pipeline"
)

func mustWindow(t *testing.T, days []string, hours, zone string) *pipeline.Window {
	t.Helper()
	w, err := pipeline.ParseWindow(days, hours, zone)
	if err != nil {
		t.Fatalf("ParseWindow(%q, %q, %q): %v", days, hours, zone, err)
	}
	return w
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindowOpenAndNextOpen(t *testing.T) {
	office := []string{"Mon", "Tue", "Wed", "Thu"}
	tests := []struct {
		name        string
		days        []string
		hours, zone string
		now         string // RFC 3339
		open        bool
		next        string // RFC 3339; "" for the zero time
	}{
		// 2026-12-03 is a Thursday; Berlin is UTC+1 in winter.
		{"inside, winter", office, "09:00-16:00", "Europe/Berlin", "2026-12-03T08:30:00Z", true, "2026-12-03T08:30:00Z"},
		{"start is inclusive", office, "09:00-16:00", "Europe/Berlin", "2026-12-03T08:00:00Z", true, "2026-12-03T08:00:00Z"},
		{"end is exclusive", office, "09:00-16:00", "Europe/Berlin", "2026-12-03T15:00:00Z", false, "2026-12-07T08:00:00Z"},
		{"one minute before the end", office, "09:00-16:00", "Europe/Berlin", "2026-12-03T14:59:00Z", true, "2026-12-03T14:59:00Z"},
		{"before hours on an open day", office, "09:00-16:00", "Europe/Berlin", "2026-12-03T07:59:00Z", false, "2026-12-03T08:00:00Z"},
		{"Friday waits for Monday", office, "09:00-16:00", "Europe/Berlin", "2026-12-04T10:00:00Z", false, "2026-12-07T08:00:00Z"},
		// 2026-07-02 is a Thursday; Berlin is UTC+2 in summer.
		{"inside, summer", office, "09:00-16:00", "Europe/Berlin", "2026-07-02T07:30:00Z", true, "2026-07-02T07:30:00Z"},
		{"same UTC instant is before hours in winter", office, "09:00-16:00", "Europe/Berlin", "2026-12-03T07:30:00Z", false, "2026-12-03T08:00:00Z"},
		{"UTC by default", office, "09:00-16:00", "", "2026-12-03T09:00:00Z", true, "2026-12-03T09:00:00Z"},
		{"whole day when hours are left out", []string{"Sat"}, "", "UTC", "2026-12-04T23:59:00Z", false, "2026-12-05T00:00:00Z"},
		{"every day when days are left out", nil, "09:00-16:00", "UTC", "2026-12-05T10:00:00Z", true, "2026-12-05T10:00:00Z"},
		{"range of days", []string{"mon-wed"}, "09:00-16:00", "UTC", "2026-12-03T10:00:00Z", false, "2026-12-07T09:00:00Z"},
		{"range wrapping the week end", []string{"Fri-Mon"}, "09:00-16:00", "UTC", "2026-12-06T10:00:00Z", true, "2026-12-06T10:00:00Z"},
		// Over midnight: the window belongs to the day it starts on.
		{"overnight, the morning after", []string{"Fri"}, "22:00-06:00", "UTC", "2026-12-05T05:00:00Z", true, "2026-12-05T05:00:00Z"},
		{"overnight, the evening after", []string{"Fri"}, "22:00-06:00", "UTC", "2026-12-05T22:00:00Z", false, "2026-12-11T22:00:00Z"},
		{"overnight, before it starts", []string{"Fri"}, "22:00-06:00", "UTC", "2026-12-04T21:00:00Z", false, "2026-12-04T22:00:00Z"},
		{"to midnight", []string{"Thu"}, "20:00-24:00", "UTC", "2026-12-03T23:59:00Z", true, "2026-12-03T23:59:00Z"},
		// Daylight saving time. Berlin springs forward on Sunday 2026-03-29
		// at 02:00 CET to 03:00 CEST, and falls back on Sunday 2026-10-25
		// at 03:00 CEST to 02:00 CET.
		{"a window inside the spring gap never opens that day", []string{"Sun"}, "02:00-02:30", "Europe/Berlin", "2026-03-28T12:00:00Z", false, "2026-04-05T00:00:00Z"},
		{"a window starting in the spring gap opens when the clocks jump", []string{"Sun"}, "02:30-04:00", "Europe/Berlin", "2026-03-28T12:00:00Z", false, "2026-03-29T01:00:00Z"},
		{"just after the jump", []string{"Sun"}, "02:30-04:00", "Europe/Berlin", "2026-03-29T01:00:00Z", true, "2026-03-29T01:00:00Z"},
		{"hours after the spring jump are summer hours", office, "09:00-16:00", "Europe/Berlin", "2026-03-29T12:00:00Z", false, "2026-03-30T07:00:00Z"},
		{"the repeated hour in autumn, first pass", []string{"Sun"}, "02:00-02:30", "Europe/Berlin", "2026-10-25T00:10:00Z", true, "2026-10-25T00:10:00Z"},
		{"the repeated hour in autumn, second pass", []string{"Sun"}, "02:00-02:30", "Europe/Berlin", "2026-10-25T01:10:00Z", true, "2026-10-25T01:10:00Z"},
		{"after the autumn change hours are winter hours", office, "09:00-16:00", "Europe/Berlin", "2026-10-25T12:00:00Z", false, "2026-10-26T08:00:00Z"},
		{"New York springs forward on another day", office, "09:00-16:00", "America/New_York", "2026-03-09T13:30:00Z", true, "2026-03-09T13:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustWindow(t, tt.days, tt.hours, tt.zone)
			now := utc(tt.now)
			if got := w.Open(now); got != tt.open {
				t.Errorf("%s: Open(%s) = %v, want %v", w, now, got, tt.open)
			}
			got := w.NextOpen(now)
			if tt.next == "" {
				if !got.IsZero() {
					t.Errorf("NextOpen = %s, want the zero time", got)
				}
				return
			}
			if want := utc(tt.next); !got.Equal(want) {
				t.Errorf("%s: NextOpen(%s) = %s (%s), want %s", w, now, got.UTC(), got, want)
			}
			if !w.Open(got) {
				t.Errorf("NextOpen(%s) = %s, where the window is closed", now, got)
			}
		})
	}
}

func TestNilWindowIsAlwaysOpen(t *testing.T) {
	var w *pipeline.Window
	now := utc("2026-12-06T03:00:00Z")
	if !w.Open(now) || !w.NextOpen(now).Equal(now) || w.String() != "always" {
		t.Errorf("nil window: Open %v, NextOpen %s, String %q", w.Open(now), w.NextOpen(now), w.String())
	}
}

func TestWindowString(t *testing.T) {
	w := mustWindow(t, []string{"Mon", "Tue", "Wed", "Thu", "Sat"}, "09:00-16:00", "Europe/Berlin")
	if got, want := w.String(), "Mon-Thu,Sat 09:00-16:00 Europe/Berlin"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseWindowProblems(t *testing.T) {
	tests := []struct {
		name        string
		days        []string
		hours, zone string
		want        []string // fragments, one per line of the error
	}{
		{"unknown day", []string{"Mon", "Funday"}, "09:00-16:00", "UTC", []string{`"Funday" is not a weekday`}},
		{"no dash", nil, "09:00", "UTC", []string{`"09:00" is not a span of hours`}},
		{"no minutes", nil, "9-16", "UTC", []string{`"9-16" is not a span of hours`}},
		{"hour out of range", nil, "25:00-26:00", "UTC", []string{"not a span of hours"}},
		{"minute out of range", nil, "09:60-10:00", "UTC", []string{"not a span of hours"}},
		{"24:00 as a start", nil, "24:00-06:00", "UTC", []string{"not a span of hours"}},
		{"empty span", nil, "09:00-09:00", "UTC", []string{"starts and ends at the same time"}},
		{"unknown zone", nil, "09:00-16:00", "Mars/Olympus", []string{`"Mars/Olympus" is not a known time zone`}},
		{"machine-local zone", nil, "09:00-16:00", "Local", []string{"depends on the machine"}},
		{"every problem at once", []string{"Someday"}, "nine-five", "Nowhere/Town", []string{"not a weekday", "not a span of hours", "not a known time zone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := pipeline.ParseWindow(tt.days, tt.hours, tt.zone)
			if err == nil || w != nil {
				t.Fatalf("ParseWindow = %v, %v; want an error", w, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("error has %d lines, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, frag := range tt.want {
				if !strings.Contains(lines[i], frag) {
					t.Errorf("line %d = %q, want it to contain %q", i, lines[i], frag)
				}
			}
		})
	}
}

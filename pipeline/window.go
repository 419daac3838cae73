package pipeline

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	// Windows name IANA zones; the zone database is built in so that a
	// container image without /usr/share/zoneinfo resolves them too.
	_ "time/tzdata"
)

// Window is when promotions may enter an environment: some weekdays,
// between two wall-clock times, in one time zone. A window whose hours end
// before they start (22:00-06:00) runs over midnight and belongs to the day
// it starts on. Times are wall-clock times in the zone, so the window moves
// with daylight saving time.
type Window struct {
	days  Days
	hours Hours
	loc   *time.Location
}

// Days is a set of weekdays.
type Days [7]bool

// Hours is a span of the day in minutes since midnight, [Start, End). End
// may be 24*60; End < Start runs over midnight.
type Hours struct {
	Start, End int
}

const day = 24 * 60

// AllDay is the whole day.
var AllDay = Hours{0, day}

// EveryDay is every day of the week.
var EveryDay = Days{true, true, true, true, true, true, true}

var weekdays = map[string]time.Weekday{}

func init() {
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := strings.ToLower(d.String())
		weekdays[name] = d
		weekdays[name[:3]] = d
	}
}

// ParseDays reads weekday names (Mon or Monday, any case) and ranges of
// them (Mon-Fri; a range may wrap, Fri-Mon); no names means every day.
func ParseDays(names []string) (Days, error) {
	if len(names) == 0 {
		return EveryDay, nil
	}
	var days Days
	var errs []error
	for _, name := range names {
		from, to, isRange := strings.Cut(name, "-")
		a, okA := weekdays[strings.ToLower(strings.TrimSpace(from))]
		b, okB := a, okA
		if isRange {
			b, okB = weekdays[strings.ToLower(strings.TrimSpace(to))]
		}
		if !okA || !okB {
			errs = append(errs, fmt.Errorf("%q is not a weekday: use Mon, Tue, Wed, Thu, Fri, Sat, Sun or a range such as Mon-Fri", name))
			continue
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, errors.Join(errs...)
}

// ParseHours reads "HH:MM-HH:MM" (24-hour clock, 24:00 allowed as the
// end); an empty string is the whole day.
func ParseHours(s string) (Hours, error) {
	if s == "" {
		return AllDay, nil
	}
	from, to, ok := strings.Cut(s, "-")
	start, errA := clock(strings.TrimSpace(from), false)
	end, errB := clock(strings.TrimSpace(to), true)
	if !ok || errA != nil || errB != nil {
		return Hours{}, fmt.Errorf("%q is not a span of hours: write HH:MM-HH:MM, such as 09:00-16:00", s)
	}
	if start == end {
		return Hours{}, fmt.Errorf("%q starts and ends at the same time; leave hours out for the whole day", s)
	}
	if end == day && start == 0 {
		return AllDay, nil
	}
	return Hours{Start: start, End: end}, nil
}

// clock reads HH:MM as minutes since midnight; 24:00 only as an end.
func clock(s string, end bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || len(hh) != 2 || len(mm) != 2 {
		return 0, errors.New("not HH:MM")
	}
	h, errH := strconv.Atoi(hh)
	m, errM := strconv.Atoi(mm)
	if errH != nil || errM != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && (m != 0 || !end)) {
		return 0, errors.New("not HH:MM")
	}
	return h*60 + m, nil
}

// LoadZone resolves an IANA time zone name such as Europe/Berlin; empty is
// UTC. "Local" is refused: a window must mean the same on every replica.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, errors.New(`"Local" depends on the machine; name a zone such as Europe/Berlin or UTC`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not a known time zone: use an IANA name such as Europe/Berlin or UTC", name)
	}
	return loc, nil
}

// NewWindow returns the window of days and hours in loc.
func NewWindow(days Days, hours Hours, loc *time.Location) *Window {
	return &Window{days: days, hours: hours, loc: loc}
}

// ParseWindow reads a window as the configuration writes it; the error
// lists every problem.
func ParseWindow(days []string, hours, zone string) (*Window, error) {
	d, errD := ParseDays(days)
	h, errH := ParseHours(hours)
	loc, errZ := LoadZone(zone)
	if err := errors.Join(errD, errH, errZ); err != nil {
		return nil, err
	}
	return NewWindow(d, h, loc), nil
}

// Open reports whether the window is open at now. A nil window is always
// open.
func (w *Window) Open(now time.Time) bool {
	if w == nil {
		return true
	}
	t := now.In(w.loc)
	mins := t.Hour()*60 + t.Minute()
	today := t.Weekday()
	if w.hours.Start < w.hours.End {
		return w.days[today] && mins >= w.hours.Start && mins < w.hours.End
	}
	// Over midnight: the evening of an open day, or the morning after one.
	yesterday := (today + 6) % 7
	return (w.days[today] && mins >= w.hours.Start) || (w.days[yesterday] && mins < w.hours.End)
}

// NextOpen returns now if the window is open at now, else the first
// instant after now at which it opens. A window that never opens (no
// days) returns the zero time.
func (w *Window) NextOpen(now time.Time) time.Time {
	if w.Open(now) {
		return now
	}
	t := now.In(w.loc)
	y, m, d := t.Date()
	// A week and a day covers every weekday once more than needed, so a
	// start skipped by a DST gap is found again the next week.
	for i := 0; i <= 8; i++ {
		start := time.Date(y, m, d+i, w.hours.Start/60, w.hours.Start%60, 0, 0, w.loc)
		if !w.days[start.Weekday()] || !start.After(now) {
			continue
		}
		if start.Hour()*60+start.Minute() != w.hours.Start {
			// The start fell into a daylight-saving gap and time.Date moved
			// it past the gap; the window opened when the clocks jumped.
			jump, _ := start.ZoneBounds()
			if jump.After(now) && jump.Before(start) {
				start = jump
			}
		}
		if w.Open(start) {
			return start
		}
	}
	return time.Time{}
}

// String describes the window, such as "Mon-Thu 09:00-16:00 Europe/Berlin".
func (w *Window) String() string {
	if w == nil {
		return "always"
	}
	return w.days.String() + " " + w.hours.String() + " " + w.loc.String()
}

// String lists the days in runs, such as "Mon-Thu,Sat".
func (d Days) String() string {
	if d == EveryDay {
		return "every day"
	}
	var runs []string
	// Monday first, as people write weeks.
	order := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
	for i := 0; i < len(order); {
		if !d[order[i]] {
			i++
			continue
		}
		j := i
		for j+1 < len(order) && d[order[j+1]] {
			j++
		}
		run := order[i].String()[:3]
		if j > i {
			run += "-" + order[j].String()[:3]
		}
		runs = append(runs, run)
		i = j + 1
	}
	if len(runs) == 0 {
		return "no day"
	}
	return strings.Join(runs, ",")
}

// String is "HH:MM-HH:MM".
func (h Hours) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", h.Start/60, h.Start%60, h.End/60, h.End%60)
}

package forge

import "fmt"

// comment is one comment on a pull request, as upsertComment sees it.
type comment struct {
	id   int64
	body string
}

// upsertComment creates, or updates in place, the one comment on a pull
// request that carries marker, so a new push updates the plan rather than
// adding a comment; a comment already showing body is left alone. list
// returns one page of comments (page 1 first) and the next page, 0 after
// the last; edit and create write the full body, marker line first. op
// names the request in errors; list, edit and create name their own.
func upsertComment(op, marker, body string, list func(page int) ([]comment, int, error),
	edit func(id int64, full string) error, create func(full string) error) error {
	line, full, err := markedBody(marker, body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for page := 1; page != 0; {
		comments, next, err := list(page)
		if err != nil {
			return err
		}
		for _, c := range comments {
			if hasMarker(c.body, line) {
				if c.body == full {
					return nil
				}
				return edit(c.id, full)
			}
		}
		page = next
	}
	return create(full)
}

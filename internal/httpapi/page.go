package httpapi

import "encoding/json"

// PageParams are the query parameters of every list operation (the contract: limit default 50,
// at most 200, and the opaque cursor of the previous page). Embed it in an operation's input.
type PageParams struct {
	Limit  int    `query:"limit" default:"50" minimum:"1" maximum:"200" doc:"Page size"`
	Cursor string `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page"`
}

// Page is the body of every list answer: {"items": [...], "next_cursor": "..."}.
//
// The end of a list is shown one way everywhere: next_cursor is always present and "" on the
// last page (a list that is never paged is one last page). items is an array, never null.
type Page[T any] struct {
	Items      []T    `json:"items" nullable:"false"`
	NextCursor string `json:"next_cursor" doc:"Pass as cursor for the next page; always present, empty (\"\") on the last page"`
}

// MarshalJSON writes a nil Items as [].
func (p Page[T]) MarshalJSON() ([]byte, error) {
	items := p.Items
	if items == nil {
		items = []T{}
	}
	return json.Marshal(struct {
		Items      []T    `json:"items"`
		NextCursor string `json:"next_cursor"`
	}{items, p.NextCursor})
}

// PageOutput is the output of a list operation.
type PageOutput[T any] struct {
	Body Page[T]
}

package httpapi

// PageParams are the query parameters of every list operation (the contract: limit default 50,
// at most 200, and the opaque cursor of the previous page). Embed it in an operation's input.
type PageParams struct {
	Limit  int    `query:"limit" default:"50" minimum:"1" maximum:"200" doc:"Page size"`
	Cursor string `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page"`
}

// Page is the body of every list answer: {"items": [...], "next_cursor": "..."}.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor" doc:"Cursor of the next page; empty at the end"`
}

// PageOutput is the output of a list operation.
type PageOutput[T any] struct {
	Body Page[T]
}

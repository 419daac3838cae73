//go:build tools

// Package gitea pins the Gitea forge used by ferry's end-to-end tests.
package gitea

import _ "code.gitea.io/gitea"

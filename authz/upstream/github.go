package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/oauth2"

	"github.com/remotemcp/remotemcp/authz/internal/tokencheck"
)

const (
	// githubPerPage is the page size of GitHub's list APIs (their most).
	githubPerPage = 100
	// githubMaxPages bounds the pages read of each list: 300
	// organizations and 300 teams are read at most.
	githubMaxPages = 3
)

// UseGitHubMemberships turns GitHubMemberships on and adds the read:org
// scope that GitHub needs for it to the scopes asked, if missing.
func (u *Provider) UseGitHubMemberships() {
	u.GitHubMemberships = true
	if !slices.Contains(u.OAuth2.Scopes, "read:org") {
		u.OAuth2.Scopes = append(slices.Clone(u.OAuth2.Scopes), "read:org")
	}
}

// githubDetails completes a GitHub identity: a verified e-mail address
// from GET /user/emails when the profile shows none, and with
// GitHubMemberships the organizations and teams as groups.
func (u *Provider) githubDetails(ctx context.Context, hc *http.Client, tok *oauth2.Token, id *Identity) error {
	base := strings.TrimSuffix(u.UserInfoURL, "/user")
	if !id.EmailVerified {
		var emails []struct {
			Email    string `json:"email"`
			Primary  bool   `json:"primary"`
			Verified bool   `json:"verified"`
		}
		// Best effort: without the user:email scope GitHub answers 404,
		// and the user simply has no verified address here.
		if err := githubGet(ctx, hc, tok, base+"/user/emails", &emails); err == nil {
			for _, e := range emails {
				if e.Primary && e.Verified && e.Email != "" {
					id.Email, id.EmailVerified = e.Email, true
				}
			}
		}
	}
	if !u.GitHubMemberships {
		return nil
	}
	var groups []string
	for page := 1; page <= githubMaxPages; page++ {
		var orgs []struct {
			Login string `json:"login"`
		}
		if err := githubGet(ctx, hc, tok, base+"/user/orgs?per_page="+strconv.Itoa(githubPerPage)+"&page="+strconv.Itoa(page), &orgs); err != nil {
			return err
		}
		for _, o := range orgs {
			groups = append(groups, o.Login)
		}
		if len(orgs) < githubPerPage {
			break
		}
	}
	for page := 1; page <= githubMaxPages; page++ {
		var teams []struct {
			Slug string `json:"slug"`
			Org  struct {
				Login string `json:"login"`
			} `json:"organization"`
		}
		if err := githubGet(ctx, hc, tok, base+"/user/teams?per_page="+strconv.Itoa(githubPerPage)+"&page="+strconv.Itoa(page), &teams); err != nil {
			return err
		}
		for _, t := range teams {
			if t.Org.Login != "" && t.Slug != "" {
				groups = append(groups, t.Org.Login+"/"+t.Slug)
			}
		}
		if len(teams) < githubPerPage {
			break
		}
	}
	id.allGroups = tokencheck.Bound(groups, 0)
	id.Groups = tokencheck.Bound(groups, MaxGroups)
	return nil
}

// githubGet reads one GitHub API answer into v: bounded in size; a
// non-200 answer is an *Error (Op "memberships"). No error holds the
// token.
func githubGet(ctx context.Context, hc *http.Client, tok *oauth2.Token, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return &Error{Op: "memberships", Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", "remotemcp")
	resp, err := hc.Do(req)
	if err != nil {
		return &Error{Op: "memberships", Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &Error{Op: "memberships", Status: resp.StatusCode, Err: errors.New(resp.Status)}
	}
	body, err := readBounded(resp.Body, maxUserInfoBytes)
	if err != nil {
		return &Error{Op: "memberships", Err: err}
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(v); err != nil {
		return &Error{Op: "memberships", Err: errors.New("the answer is not the expected JSON")}
	}
	return nil
}

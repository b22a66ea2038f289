package pages

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"

	"github.com/gin-gonic/gin"
	"github.com/onboarding-service/onboarding/server/problem"
)

// The page's stylesheet and script, embedded and served from this origin (the page's CSP allows
// nothing else). Their URLs carry a content hash, so they can be cached for good and a new
// release is fetched at once.

//go:embed static/*
var staticFiles embed.FS

type staticAsset struct {
	body        []byte
	contentType string
	version     string
}

// AssetURLs are the versioned URLs the layout links to.
type AssetURLs struct {
	CSS string
	JS  string
}

var staticAssets = func() map[string]staticAsset {
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
	entries, err := staticFiles.ReadDir("static")
	if err != nil {
		panic(err)
	}
	out := map[string]staticAsset{}
	for _, e := range entries {
		body, err := staticFiles.ReadFile("static/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		out[e.Name()] = staticAsset{body: body, contentType: types[path.Ext(e.Name())], version: hex.EncodeToString(sum[:6])}
	}
	return out
}()

// Assets are the URLs of the page's stylesheet and script.
var Assets = AssetURLs{CSS: assetURL("invite.css"), JS: assetURL("invite.js")}

func assetURL(name string) string {
	a, ok := staticAssets[name]
	if !ok {
		panic("missing static asset " + name)
	}
	return "/invite/assets/" + name + "?v=" + a.version
}

// Asset answers GET /invite/assets/:name.
func Asset(c *gin.Context) {
	a, ok := staticAssets[c.Param("name")]
	if !ok || a.contentType == "" {
		problem.Write(c, problem.NotFound("asset"))
		return
	}
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+a.version+`"`)
	if c.Query("v") == a.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if c.GetHeader("If-None-Match") == `"`+a.version+`"` {
		c.Status(http.StatusNotModified)
		c.Abort()
		return
	}
	c.Data(http.StatusOK, a.contentType, a.body)
}

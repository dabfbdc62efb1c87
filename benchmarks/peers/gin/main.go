// Gin peer for the WasmKernel /matmul HTTP benchmark (see ../README.md).
//
// Built offline in GOPATH mode over Debian's packaged sources:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o bin/gin-peer main.go
package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

func buildMatrices(n int) ([]float64, []float64) {
	a := make([]float64, n*n)
	b := make([]float64, n*n)
	nn := int64(n)
	for i := int64(0); i < nn; i++ {
		for j := int64(0); j < nn; j++ {
			idx := i*nn + j
			a[idx] = float64(idx%7) * 0.5
			b[idx] = float64(idx%5) * 0.25
		}
	}
	return a, b
}

// matmulNaive: zero C; for i, for k, a = A[i][k], for j: C[i][j] += a*B[k][j].
func matmulNaive(a, b, c []float64, n int) {
	for x := range c {
		c[x] = 0
	}
	for i := 0; i < n; i++ {
		ci := c[i*n : i*n+n]
		for k := 0; k < n; k++ {
			aik := a[i*n+k]
			bk := b[k*n : k*n+n]
			for j := 0; j < n; j++ {
				ci[j] += aik * bk[j]
			}
		}
	}
}

func badRequest(c *gin.Context, msg string) {
	c.JSON(http.StatusUnprocessableEntity, gin.H{"error": msg})
}

func main() {
	port := os.Getenv("PORT")
	if _, err := strconv.Atoi(port); err != nil {
		fmt.Fprintln(os.Stderr, "PORT environment variable is required")
		os.Exit(2)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New() // no Logger, no Recovery middleware

	r.GET("/hello", func(c *gin.Context) {
		c.String(http.StatusOK, "Hello, world!")
	})

	r.GET("/matmul", func(c *gin.Context) {
		raw, ok := c.GetQuery("n")
		n, err := strconv.Atoi(raw)
		if !ok || err != nil || n < 1 || n > 5000 {
			badRequest(c, "n must be an integer in 1..5000")
			return
		}
		if k, has := c.GetQuery("kernel"); has && k != "naive" {
			badRequest(c, `unknown kernel (only "naive")`)
			return
		}
		a, b := buildMatrices(n)
		cm := make([]float64, n*n)
		t0 := time.Now() // carries a monotonic reading
		matmulNaive(a, b, cm, n)
		ms := float64(time.Since(t0).Nanoseconds()) / 1e6
		sum := 0.0
		for _, v := range cm {
			sum += v
		}
		c.JSON(http.StatusOK, gin.H{"n": n, "kernel": "naive", "checksum": sum, "compute_ms": ms})
	})

	if err := r.Run("127.0.0.1:" + port); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

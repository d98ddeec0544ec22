package gen

import "math"

// camera is an orbiting camera around the scene's focus point: it drifts
// smoothly from sample to sample, as a visitor dragging it would.
type camera struct {
	target       [3]float64
	az, el, dist float64
	radius       float64 // the scene's typical distance
	fov, aspect  float64
}

func (c *camera) reset(sc *scene, r *rng, aspect float64) {
	c.target = sc.target
	c.radius = sc.radius
	c.az = r.uniform(-math.Pi, math.Pi)
	c.el = r.uniform(0.1, 0.5)
	c.dist = sc.radius * r.uniform(0.85, 1.15)
	c.fov = 0.8
	c.aspect = aspect
}

func (c *camera) move(r *rng) {
	c.az += r.gauss() * 0.03
	if c.az > math.Pi {
		c.az -= 2 * math.Pi
	} else if c.az < -math.Pi {
		c.az += 2 * math.Pi
	}
	c.el = clamp(c.el+r.gauss()*0.01, -0.05, 1.3)
	c.dist = clamp(c.dist*(1+r.gauss()*0.01), 0.4*c.radius, 2*c.radius)
}

// dir is the unit vector from the target to the camera.
func (c *camera) dir() [3]float64 {
	ce := math.Cos(c.el)
	return [3]float64{ce * math.Sin(c.az), math.Sin(c.el), ce * math.Cos(c.az)}
}

func (c *camera) position() [3]float64 {
	d := c.dir()
	return [3]float64{c.target[0] + c.dist*d[0], c.target[1] + c.dist*d[1], c.target[2] + c.dist*d[2]}
}

func (c *camera) direction() [3]float64 {
	d := c.dir()
	return [3]float64{-d[0], -d[1], -d[2]}
}

// hit is a point on a mesh near the camera's focus.
func (c *camera) hit(r *rng) [3]float64 {
	return [3]float64{c.target[0] + r.gauss(), c.target[1] + 0.6*r.gauss(), c.target[2] + r.gauss()}
}

func (s *session) moveCamera(r *rng) {
	s.cam.move(r)
	// The pointer wanders over the canvas.
	s.px = clamp(s.px+r.gauss()*0.04, 0, 1)
	s.py = clamp(s.py+r.gauss()*0.04, 0, 1)
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

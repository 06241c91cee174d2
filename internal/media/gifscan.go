package media

import (
	"encoding/binary"
	"errors"
)

var errGIFStructure = errors.New("media: malformed GIF")

// gifFrames walks the block structure of a GIF without decompressing anything and returns the
// number of frames and the sum of their areas in pixels. The decoder allocates one paletted image
// per frame, so this bounds the memory that decoding every frame will take: LZW compresses a
// flat frame about 2700:1, so a small file can otherwise expand to gigabytes.
func gifFrames(b []byte) (frames int, pixels int64, err error) {
	if len(b) < 13 || (string(b[:6]) != "GIF87a" && string(b[:6]) != "GIF89a") {
		return 0, 0, errGIFStructure
	}
	i := 13
	if b[10]&0x80 != 0 { // global color table
		i += 3 << (b[10]&7 + 1)
	}
	skipSubBlocks := func() bool {
		for i < len(b) {
			n := int(b[i])
			i++
			if n == 0 {
				return true
			}
			i += n
		}
		return false
	}
	for i < len(b) {
		switch b[i] {
		case 0x3B: // trailer
			return frames, pixels, nil
		case 0x21: // extension: label, then sub-blocks
			i += 2
			if !skipSubBlocks() {
				return frames, pixels, errGIFStructure
			}
		case 0x2C: // image descriptor
			if i+10 > len(b) {
				return frames, pixels, errGIFStructure
			}
			w := int64(binary.LittleEndian.Uint16(b[i+5:]))
			h := int64(binary.LittleEndian.Uint16(b[i+7:]))
			packed := b[i+9]
			i += 10
			if packed&0x80 != 0 { // local color table
				i += 3 << (packed&7 + 1)
			}
			i++ // LZW minimum code size
			if !skipSubBlocks() {
				return frames, pixels, errGIFStructure
			}
			frames++
			pixels += w * h
		default:
			return frames, pixels, errGIFStructure
		}
	}
	return frames, pixels, errGIFStructure // no trailer: truncated
}

"""Writes fuzz/seeds/guest_output/aliased_buffers: a stream of one batch of
64 Int8 columns x 1,024 rows whose values buffers all point at the same
1 KiB of its body (offset 0). arrow-ipc decodes it, zero-copy, to 64 KiB of
columns; the host must refuse it (buffers add up to more than the body).
Run with a Python that has pyarrow, from the repository root."""
import pyarrow as pa, struct
C, N = 64, 1024
vals = pa.array([(i*7919)%256-128 for i in range(N)], type=pa.int8())
batch = pa.record_batch([vals]*C, names=[f"c{i}" for i in range(C)])
sink = pa.BufferOutputStream()
with pa.ipc.new_stream(sink, batch.schema) as w: w.write_batch(batch)
buf = sink.getvalue().to_pybytes()
# split messages
def msgs(b):
    at=0; out=[]
    while at < len(b):
        assert b[at:at+4]==b'\xff'*4
        ml=struct.unpack('<i',b[at+4:at+8])[0]
        if ml==0: out.append((at,8,0)); break
        meta=b[at+8:at+8+ml]
        out.append((at,ml,meta)); at+=8+ml
        # body length: parse via pyarrow
        m = pa.ipc.read_message(pa.py_buffer(b[out[-1][0]:]))
        at += m.body.size
        out[-1]=(out[-1][0],ml,meta,m.body.size)
    return out
ms = msgs(buf)
schema_end = ms[0][0]+8+ms[0][1]
at, ml, meta, blen = ms[1]
meta = bytearray(meta)
pad = (N+7)//8*8
# buffers vector: pairs (offset,len); find the sequence for columns
cnt=0
expected=[]
off=0
for i in range(C):
    expected += [(off,0),(off,N)]; off += pad
first = struct.pack('<qq',*expected[0])+struct.pack('<qq',*expected[1])+struct.pack('<qq',*expected[2])
p = meta.find(first)
assert p>0
for i in range(2*C):
    o,l = struct.unpack_from('<qq',meta,p+16*i); assert (o,l)==expected[i], (i,o,l)
    struct.pack_into('<qq',meta,p+16*i,0,l)
q = meta.find(struct.pack('<q',blen)); assert q>0
struct.pack_into('<q',meta,q,pad)
body = buf[at+8+ml: at+8+ml+pad]
new = buf[:schema_end] + buf[at:at+8] + bytes(meta) + body + b'\xff\xff\xff\xff\x00\x00\x00\x00'
open('fuzz/seeds/guest_output/aliased_buffers','wb').write(bytes([255])+new)
print("wire bytes", len(new), "metadata", ml, "body", pad, "orig", len(buf))

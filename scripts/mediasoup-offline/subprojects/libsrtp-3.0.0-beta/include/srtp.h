/*
 * libsrtp 3.x API shim over Debian's libsrtp2 (2.4/2.5), used only by the
 * offline mediasoup-worker build (scripts/mediasoup-worker.sh).
 *
 * mediasoup 3.19 includes <srtp.h> and calls the libsrtp 3 API:
 *   srtp_protect(ctx, const uint8_t* in, size_t in_len, uint8_t* out, size_t* out_len, size_t mki)
 *   srtp_protect_rtcp(...same...)
 *   srtp_unprotect(ctx, const uint8_t* in, size_t in_len, uint8_t* out, size_t* out_len)
 *   srtp_unprotect_rtcp(...same...)
 *   srtp_stream_remove(ctx, uint32_t ssrc)
 * and uses the error codes srtp_err_status_buffer_small / _cryptex_err.
 * libsrtp 2.x works in place (srtp_protect(ctx, void* buf, int* len)) and names
 * the stream removal srtp_remove_stream(). The C++ overloads below copy the
 * input into the output buffer, check its capacity and call the 2.x function
 * in place. Everything else the worker uses has the same name and meaning.
 */
#ifndef SWITCHBOARD_SRTP3_COMPAT_SRTP_H
#define SWITCHBOARD_SRTP3_COMPAT_SRTP_H

#include <srtp2/srtp.h>

#ifdef __cplusplus

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>

/* Error codes added in libsrtp 3 (same numeric values as in libsrtp 3). */
constexpr srtp_err_status_t srtp_err_status_buffer_small = static_cast<srtp_err_status_t>(28);
constexpr srtp_err_status_t srtp_err_status_cryptex_err  = static_cast<srtp_err_status_t>(29);

namespace switchboard_srtp3_compat
{
	/* Max bytes libsrtp 2 may append when protecting RTP / RTCP in place. */
	constexpr size_t RtpTrailer  = SRTP_MAX_TRAILER_LEN;
	constexpr size_t RtcpTrailer = SRTP_MAX_TRAILER_LEN + 4; /* + E flag and SRTCP index */

	using InPlaceFn = srtp_err_status_t (*)(srtp_t, void*, int*);

	inline srtp_err_status_t Apply(
	  InPlaceFn fn,
	  srtp_t ctx,
	  const uint8_t* in,
	  size_t inLen,
	  uint8_t* out,
	  size_t* outLen,
	  size_t growth)
	{
		if (ctx == nullptr || out == nullptr || outLen == nullptr || (in == nullptr && inLen != 0))
		{
			return srtp_err_status_bad_param;
		}

		if (inLen > static_cast<size_t>(INT_MAX) - growth)
		{
			return srtp_err_status_bad_param;
		}

		if (*outLen < inLen + growth)
		{
			return srtp_err_status_buffer_small;
		}

		if (out != in)
		{
			std::memmove(out, in, inLen);
		}

		int len = static_cast<int>(inLen);
		const srtp_err_status_t err = fn(ctx, static_cast<void*>(out), &len);

		if (err != srtp_err_status_ok)
		{
			return err;
		}

		if (len < 0 || static_cast<size_t>(len) > inLen + growth)
		{
			return srtp_err_status_fail;
		}

		*outLen = static_cast<size_t>(len);

		return srtp_err_status_ok;
	}

	inline srtp_err_status_t ProtectRtp(srtp_t ctx, void* buf, int* len)
	{
		return ::srtp_protect(ctx, buf, len);
	}
	inline srtp_err_status_t UnprotectRtp(srtp_t ctx, void* buf, int* len)
	{
		return ::srtp_unprotect(ctx, buf, len);
	}
	inline srtp_err_status_t ProtectRtcp(srtp_t ctx, void* buf, int* len)
	{
		return ::srtp_protect_rtcp(ctx, buf, len);
	}
	inline srtp_err_status_t UnprotectRtcp(srtp_t ctx, void* buf, int* len)
	{
		return ::srtp_unprotect_rtcp(ctx, buf, len);
	}
} // namespace switchboard_srtp3_compat

/* libsrtp 3 signatures (C++ overloads of the libsrtp 2 C functions). */

inline srtp_err_status_t srtp_protect(
  srtp_t ctx, const uint8_t* rtp, size_t rtp_len, uint8_t* srtp, size_t* srtp_len, size_t /*mki_index*/)
{
	/* mediasoup never configures MKI, for which libsrtp 3 ignores mki_index. */
	return switchboard_srtp3_compat::Apply(
	  switchboard_srtp3_compat::ProtectRtp,
	  ctx,
	  rtp,
	  rtp_len,
	  srtp,
	  srtp_len,
	  switchboard_srtp3_compat::RtpTrailer);
}

inline srtp_err_status_t srtp_unprotect(
  srtp_t ctx, const uint8_t* srtp, size_t srtp_len, uint8_t* rtp, size_t* rtp_len)
{
	return switchboard_srtp3_compat::Apply(
	  switchboard_srtp3_compat::UnprotectRtp, ctx, srtp, srtp_len, rtp, rtp_len, 0);
}

inline srtp_err_status_t srtp_protect_rtcp(
  srtp_t ctx, const uint8_t* rtcp, size_t rtcp_len, uint8_t* srtcp, size_t* srtcp_len, size_t /*mki_index*/)
{
	return switchboard_srtp3_compat::Apply(
	  switchboard_srtp3_compat::ProtectRtcp,
	  ctx,
	  rtcp,
	  rtcp_len,
	  srtcp,
	  srtcp_len,
	  switchboard_srtp3_compat::RtcpTrailer);
}

inline srtp_err_status_t srtp_unprotect_rtcp(
  srtp_t ctx, const uint8_t* srtcp, size_t srtcp_len, uint8_t* rtcp, size_t* rtcp_len)
{
	return switchboard_srtp3_compat::Apply(
	  switchboard_srtp3_compat::UnprotectRtcp, ctx, srtcp, srtcp_len, rtcp, rtcp_len, 0);
}

inline srtp_err_status_t srtp_stream_remove(srtp_t session, uint32_t ssrc)
{
	/* Both versions take the SSRC in network byte order. */
	return ::srtp_remove_stream(session, ssrc);
}

#endif /* __cplusplus */

#endif /* SWITCHBOARD_SRTP3_COMPAT_SRTP_H */

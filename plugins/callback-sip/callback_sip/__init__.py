"""callback-sip: callback's SIP dialer (PJSIP through pjsua2) with the survey run as an IVR."""

from callback_sip.dialer import SipDialer

__all__ = ["SipDialer", "__version__"]

__version__ = "0.1.0"

"""From formula and data to the host design (y, X, offset, random-effects terms), and new data encoded alike."""

from .encode import NewRows, encode_new

__all__ = ["NewRows", "encode_new"]

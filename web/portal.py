"""HTML routes: portal."""

from fastapi import APIRouter

router = APIRouter()

"""HTML routes: auth_pages."""

from fastapi import APIRouter

router = APIRouter()
